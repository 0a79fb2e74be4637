"""Train/validation/test splits of a Dataset, standardised with train-only statistics.

Row draws come from :func:`~jaxmlp.data.shuffle_split.split_indices` (scikit-learn's
``train_test_split`` draw for draw, stratified when every class is large enough).
"""
from __future__ import annotations

import numpy as np

from jaxmlp.config import DataConfig
from jaxmlp.data.dataset import Dataset, Splits
from jaxmlp.data.shuffle_split import split_indices

#: Data sets with fewer rows than this are not split: train = val = test = all rows.
TINY_N = 20


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


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a64 = a.astype(np.float64)
    mean = a64.mean(axis=0)
    std = a64.std(axis=0)
    std[(np.ptp(a, axis=0) == 0) | ~(std > 0)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def make_splits(ds: Dataset, cfg: DataConfig) -> Splits:
    """Shuffle and split a Dataset into train/val/test, then standardise with train statistics.

    Sizes are ``round(n * val_fraction)`` and ``round(n * test_fraction)`` (train keeps at
    least one row), drawn with ``cfg.split_seed``; classification splits are stratified
    whenever every class is large enough. Data sets with fewer than 20 rows (e.g. "xor") are
    not split: train, val and test are all the rows in their original order (val/test are
    empty if their fraction is 0). With ``cfg.standardize``, X (and regression y) are
    shifted/scaled by the train split's mean and std (std 1 for constant columns).

    Args:
        ds: The data set.
        cfg: The data configuration (fractions, split_seed, standardize).

    Returns:
        The Splits.
    """
    tr, va, te = _split_rows(ds, cfg)
    X_tr, X_va, X_te = ds.X[tr], ds.X[va], ds.X[te]
    y_tr, y_va, y_te = ds.y[tr], ds.y[va], ds.y[te]
    d = ds.n_features
    if cfg.standardize:
        x_mean, x_std = _stats(X_tr)
    else:
        x_mean, x_std = np.zeros(d, np.float32), np.ones(d, np.float32)

    def sx(a):
        return ((a - x_mean) / x_std).astype(np.float32) if cfg.standardize else a.astype(np.float32)

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
                  feature_names=ds.feature_names)


def _split_rows(ds: Dataset, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices ``(train, val, test)``: all rows in order for a tiny set, else seeded draws
    of ``round(n * fraction)`` rows (train keeps at least one)."""
    n = ds.n_samples
    idx = np.arange(n)
    if n < TINY_N:
        tr = idx
        va = idx if cfg.val_fraction > 0 else idx[:0]
        te = idx if cfg.test_fraction > 0 else idx[:0]
        return tr, va, te
    n_test = int(round(n * cfg.test_fraction))
    n_val = int(round(n * cfg.val_fraction))
    while n - n_test - n_val < 1:
        if n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    seed = cfg.split_seed % (2 ** 32)
    labels = ds.y if ds.task == "classification" else None
    rest, te = _split_idx(idx, n_test, labels, seed)
    tr, va = _split_idx(rest, n_val, None if labels is None else labels[rest], seed)
    return tr, va, te
