"""Seeded train/test index splits, plain and stratified, without importing scikit-learn.

The draws follow scikit-learn's ``train_test_split(..., shuffle=True, random_state=seed,
stratify=labels)`` step for step (a ``RandomState(seed)``; per class, a proportional share
rounded by the largest remainders with random tie-breaks, then a permutation of each class
and of each part), so the splits jaxmlp made when it called scikit-learn are the splits it
makes now: same rows, same order (``tests/test_bundled.py`` checks it against scikit-learn).
``import sklearn`` alone costs 0.5-2 s, more than a whole default training run.
"""
from __future__ import annotations

import numpy as np


def _proportional_counts(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """``n_draws`` shared out over classes in proportion to ``counts``: the floors first, then
    one more for the largest remainders (ties broken at random)."""
    share = counts / counts.sum() * n_draws
    out = np.floor(share)
    missing = int(n_draws - out.sum())
    if missing > 0:
        rest = share - out
        for value in np.sort(np.unique(rest))[::-1]:
            (where,) = np.where(rest == value)
            take = min(len(where), missing)
            out[rng.choice(where, size=take, replace=False)] += 1
            missing -= take
            if missing == 0:
                break
    return out.astype(int)


def split_indices(idx: np.ndarray, size: int, labels=None, seed: int = 0):
    """``(rest, part)``: ``size`` entries of ``idx`` drawn with ``seed`` into ``part``,
    stratified by ``labels`` (aligned with ``idx``) when given.

    Raises:
        ValueError: ``size`` not in ``[1, len(idx))``, or (stratified) a class with fewer than
            2 members, or fewer rows on either side than classes.
    """
    idx = np.asarray(idx)
    n = len(idx)
    if not 0 < size < n:
        raise ValueError(f"split size {size} must be in [1, {n})")
    rng = np.random.RandomState(seed)
    if labels is None:
        perm = rng.permutation(n)
        return idx[perm[size:]], idx[perm[:size]]
    classes, inverse, counts = np.unique(np.asarray(labels), return_inverse=True,
                                         return_counts=True)
    n_rest = n - size
    if counts.min() < 2 or n_rest < len(classes) or size < len(classes):
        raise ValueError("too few rows per class to stratify")
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    n_rest_i = _proportional_counts(counts, n_rest, rng)
    n_part_i = _proportional_counts(counts - n_rest_i, size, rng)
    rest, part = [], []
    for members, r, p in zip(by_class, n_rest_i, n_part_i):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        rest.extend(shuffled[:r])
        part.extend(shuffled[r:r + p])
    return idx[rng.permutation(rest)], idx[rng.permutation(part)]
