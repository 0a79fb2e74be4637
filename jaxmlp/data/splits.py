"""Train/validation/test splits of a Dataset, standardised with train-only statistics.

Row draws come from :func:`~jaxmlp.data.shuffle_split.split_indices` (scikit-learn's
``train_test_split`` draw for draw, stratified when every class is large enough).
"""
from __future__ import annotations

import warnings

import numpy as np

from jaxmlp.config import DataConfig
from jaxmlp.data.dataset import Dataset, Splits
from jaxmlp.data.shuffle_split import split_indices
from jaxmlp.errors import DataError

#: Data sets with fewer rows than this are not split (train = val = test = all rows) when
#: their ``Dataset.whole_if_tiny`` says so: user data and the 4-point logic sets.
TINY_N = 20


class UnsplitDataWarning(UserWarning):
    """A tiny data set was not split: its validation/test metrics are on the training rows."""


def _split_idx(idx: np.ndarray, size: int, labels, seed: int):
    """Split ``idx`` into (rest, part of ``size``), stratified when possible."""
    if size <= 0:
        return idx, idx[:0]
    if labels is not None:
        try:
            return split_indices(idx, size, labels, seed)
        except ValueError:
            pass  # a class too small to stratify: fall back to a plain shuffle
    return split_indices(idx, size, None, seed)


#: Rows per block of ``_stats``: the float64 work stays a few tens of megabytes.
STATS_BLOCK_ROWS = 8192


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``a`` (float32; std 1 for constant columns),
    summed in float64 over blocks of rows: two passes, never a float64 copy of the whole
    array (that copy and its variance took 3 of the 5.5 s of loading 100,000 x 784 rows)."""
    blocks = [a[i:i + STATS_BLOCK_ROWS] for i in range(0, a.shape[0], STATS_BLOCK_ROWS)]
    mean = sum(b.sum(axis=0, dtype=np.float64) for b in blocks) / a.shape[0]
    squares = np.zeros_like(mean)
    for b in blocks:
        d = b - mean  # float64, one block
        squares += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(squares / a.shape[0])
    std[(np.ptp(a, axis=0) == 0) | ~(std > 0)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def make_splits(ds: Dataset, cfg: DataConfig) -> Splits:
    """Shuffle and split a Dataset into train/val/test, then standardise with train statistics.

    Sizes are ``round(n * val_fraction)`` and ``round(n * test_fraction)`` (train keeps at
    least one row), drawn with ``cfg.split_seed``; classification splits are stratified
    whenever every class is large enough. A split whose fraction is above 0 must get at least
    one row, and a classification train split at least 2 classes, else ``DataError``: no
    split is silently empty or one-class.

    Tiny sets: a data set with fewer than :data:`TINY_N` (20) rows whose
    ``ds.whole_if_tiny`` is true (user files and arrays, the 4-point "xor"/"and"/"or") is not
    split: train, val and test are all the rows in their original order (val/test are empty
    if their fraction is 0), and, as the val/test metrics are then training metrics, an
    :class:`UnsplitDataWarning` says so. Built-in sets made small with ``n_samples`` have
    ``whole_if_tiny`` false and are split like any other (or refused), so training rows are
    never reported as held out. With ``cfg.standardize``, X (and regression y) are
    shifted/scaled by the train split's mean and std (std 1 for constant columns).

    Args:
        ds: The data set.
        cfg: The data configuration (fractions, split_seed, standardize).

    Returns:
        The Splits.

    Raises:
        DataError: the requested splits cannot be made (too few rows or classes).
    """
    tr, va, te = _split_rows(ds, cfg)
    X_tr, X_va, X_te = ds.X[tr], ds.X[va], ds.X[te]
    y_tr, y_va, y_te = ds.y[tr], ds.y[va], ds.y[te]
    d = ds.n_features
    if cfg.standardize:
        x_mean, x_std = _stats(X_tr)
    else:
        x_mean, x_std = np.zeros(d, np.float32), np.ones(d, np.float32)

    def sx(a):  # ``a`` is a fresh copy of the split's rows (fancy indexing): scaled in place
        a = a.astype(np.float32, copy=False)
        if cfg.standardize:
            a -= x_mean
            a /= x_std
        return a

    y_mean = y_std = None
    if ds.task == "regression":
        k = ds.y.shape[1]
        if cfg.standardize:
            y_mean, y_std = _stats(y_tr)
            y_tr, y_va, y_te = (((a - y_mean) / y_std).astype(np.float32) for a in (y_tr, y_va, y_te))
        else:
            y_mean, y_std = np.zeros(k, np.float32), np.ones(k, np.float32)
    return Splits(X_train=sx(X_tr), y_train=y_tr, X_val=sx(X_va), y_val=y_va,
                  X_test=sx(X_te), y_test=y_te, task=ds.task, n_classes=ds.n_classes,
                  name=ds.name, x_mean=x_mean, x_std=x_std, y_mean=y_mean, y_std=y_std,
                  feature_names=ds.feature_names, classes=ds.class_values)


def _split_rows(ds: Dataset, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices ``(train, val, test)``: all rows in order for a tiny set (with a warning
    when val/test are asked for), else seeded draws of ``round(n * fraction)`` rows."""
    n = ds.n_samples
    idx = np.arange(n)
    if n < TINY_N and ds.whole_if_tiny:
        tr = idx
        va = idx if cfg.val_fraction > 0 else idx[:0]
        te = idx if cfg.test_fraction > 0 else idx[:0]
        if len(va) or len(te):
            warnings.warn(f"{ds.name}: {n} rows (fewer than {TINY_N}) are not split: the "
                          "validation/test metrics are on the training rows, not held out",
                          UnsplitDataWarning, stacklevel=3)
        return tr, va, te
    n_test = int(round(n * cfg.test_fraction))
    n_val = int(round(n * cfg.val_fraction))
    while n - n_test - n_val < 1 and n_val + n_test > 0:
        if n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    _check_sizes(ds, cfg, n_val, n_test)
    seed = cfg.split_seed % (2 ** 32)
    labels = ds.y if ds.task == "classification" else None
    rest, te = _split_idx(idx, n_test, labels, seed)
    tr, va = _split_idx(rest, n_val, None if labels is None else labels[rest], seed)
    if labels is not None and len(np.unique(labels[tr])) < 2:
        raise DataError(f"{ds.name}: the training split ({len(tr)} of {n} rows) holds only one "
                        "class; classification needs at least 2 (use more rows or smaller "
                        "val/test fractions)")
    return tr, va, te


def _check_sizes(ds: Dataset, cfg: DataConfig, n_val: int, n_test: int) -> None:
    """Every split asked for (fraction > 0) gets a row, and train keeps one."""
    n = ds.n_samples
    empty = [what for what, frac, k in (("validation", cfg.val_fraction, n_val),
                                         ("test", cfg.test_fraction, n_test)) if frac > 0 and k < 1]
    if empty or n - n_val - n_test < 1:
        raise DataError(f"{ds.name}: {n} row(s) are too few for non-empty train/validation/test "
                        f"splits at val_fraction={cfg.val_fraction}, "
                        f"test_fraction={cfg.test_fraction} ({' and '.join(empty) or 'train'} "
                        "split would be empty); use more rows or set the fraction to 0")
