"""From a :class:`~jaxmlp.config.DataConfig` to data: a built-in name or a user file, then
its splits (the entry points the CLI, ``fit`` callers and scripts use)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxmlp.config import DataConfig
from jaxmlp.data.catalog import DATASETS
from jaxmlp.data.dataset import Dataset, Splits
from jaxmlp.data.files import load_csv, load_npz
from jaxmlp.data.splits import make_splits
from jaxmlp.data.validate import validate_arrays
from jaxmlp.errors import ConfigError, DataError

#: The built-in sets small by design (4 points), used whole rather than split.
_LOGIC_SETS = ("xor", "and", "or")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the data set ``cfg.dataset``: a :data:`DATASETS` name or a .csv/.npz path.

    For built-in names, ``cfg.n_samples`` / ``cfg.noise`` override the generator defaults
    (scikit-learn sets take a seeded random subset of ``n_samples`` rows; the boolean sets
    ignore both). For files, ``cfg.target`` (CSV) and ``cfg.task`` apply. Generated and
    bundled arrays pass the same :func:`validate_arrays` checks as a user file's (finite in
    float32, non-empty, at least 2 classes), so ``noise=1e39`` is a ``DataError``, not a
    diverged run. Built-in sets other than the 4-point logic sets are always split
    (``Dataset.whole_if_tiny`` false; see :func:`~jaxmlp.data.splits.make_splits`).

    Args:
        cfg: The data configuration.

    Returns:
        The Dataset.

    Raises:
        DataError: unknown name, missing or malformed file.
        ConfigError: ``target`` on a non-CSV source, or ``task`` contradicting a built-in set.
    """
    name = cfg.dataset
    key = name.strip().lower()
    if key in DATASETS:
        if cfg.target is not None:
            raise ConfigError(f"target={cfg.target!r} applies to CSV files only, not to the "
                              f"built-in data set {key!r}")
        with np.errstate(over="ignore", invalid="ignore"):  # validate_arrays names the damage
            ds = DATASETS[key](n_samples=cfg.n_samples, noise=cfg.noise)
        if cfg.task != "auto" and cfg.task != ds.task:
            raise ConfigError(f"data set {key!r} is a {ds.task} set; task={cfg.task!r} "
                              "does not apply")
        validate_arrays(ds.X, ds.y, ds.task, ds.n_classes, key, warn_constant=False)
        return dataclasses.replace(ds, whole_if_tiny=key in _LOGIC_SETS)
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return load_csv(name, target=cfg.target, task=cfg.task)
    if suffix == ".npz":
        if cfg.target is not None:
            raise ConfigError("target applies to CSV files only, not .npz")
        return load_npz(name, task=cfg.task)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                    "or give a .csv/.npz path")


def load_splits(cfg: DataConfig) -> Splits:
    """``make_splits(load_dataset(cfg), cfg)``.

    Args:
        cfg: The data configuration.

    Returns:
        The Splits.
    """
    return make_splits(load_dataset(cfg), cfg)
