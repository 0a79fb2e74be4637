"""Check and convert user arrays: numeric, finite, rectangular, labels in range.

:func:`validate_arrays` is the one gate arrays pass before they become a :class:`Dataset`
(user files, arrays handed to ``fit``); every failure is a :class:`~jaxmlp.errors.DataError`
that names the data set and, where it can, the row and column.
"""
from __future__ import annotations

import warnings

import numpy as np

from jaxmlp.data.dataset import TASKS
from jaxmlp.errors import ConfigError, DataError

#: Upper bound on an inferred class count (labels ``max + 1``), to reject garbage labels.
MAX_CLASSES = 100_000


class ConstantFeatureWarning(UserWarning):
    """A feature column has the same value in every row (it carries no information)."""


def _as_numeric(a, what: str, name: str) -> np.ndarray:
    """``np.asarray`` that accepts bool/int/float (and object arrays of numbers) only."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:  # ragged nested lists, odd objects
        raise DataError(f"{name}: {what} is not a rectangular numeric array ({e})") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (ValueError, TypeError):
            raise DataError(f"{name}: {what} must be numeric, got non-numeric objects") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name}: {what} must be numeric, got dtype {arr.dtype}")
    return arr


def _first_bad(mask: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    if len(idx) == 2:
        return f"row {idx[0]}, column {idx[1]}"
    return f"row {idx[0]}"


def _check_finite(a: np.ndarray, what: str, name: str) -> None:
    # every value is finite iff their float64 sum is (float32 values cannot overflow it, a NaN
    # or inf makes it non-finite): one pass, no mask unless something is wrong
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a, dtype=np.float64)):
            return
    bad = ~np.isfinite(a)
    count = int(bad.sum())
    if count:
        raise DataError(f"{name}: {what} has {count} non-finite value(s) (NaN/inf, or too large "
                        f"for float32); first at {_first_bad(bad)}")


def validate_arrays(X, y, task: str, n_classes: int | None = None, name: str = "data", *,
                    warn_constant: bool = True, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a data set's arrays.

    Args:
        X: Inputs, shape ``(n, d)``, any numeric dtype.
        y: Classification: integral labels, shape ``(n,)`` (or ``(n, 1)``). Regression:
            targets, shape ``(n,)`` (becomes ``(n, 1)``) or ``(n, k)``.
        task: ``"classification"`` or ``"regression"``.
        n_classes: Classification only: the number of classes; ``None`` infers
            ``max(label) + 1``.
        name: Data set name used in error messages.
        warn_constant: Emit a :class:`ConstantFeatureWarning` for constant feature columns.
        min_classes: Classification only: how many distinct labels must be present (2 for a
            training set; 1 for an evaluation split, which may hold a single class).

    Returns:
        ``(X, y)``: X ``(n, d)`` float32; y ``(n,)`` int32 or ``(n, k)`` float32.

    Raises:
        DataError: empty data, wrong rank, non-numeric or non-finite values, length mismatch,
            non-integral or out-of-range labels, fewer than two classes present.
        ConfigError: unknown ``task``.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    X = _as_numeric(X, "X", name)
    y = _as_numeric(y, "y", name)
    X32 = _checked_inputs(X, y, name)
    if task == "classification":
        y32 = _class_labels(y, n_classes, name, min_classes)
    else:
        y32 = _regression_targets(y, name)
    if warn_constant and X32.shape[0] > 1:
        _warn_constant_columns(X32, name)
    return np.ascontiguousarray(X32), np.ascontiguousarray(y32)


def _checked_inputs(X: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """X's shape against y's length, then X as float32 with every value finite."""
    if X.ndim != 2:
        raise DataError(f"{name}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    n, d = X.shape
    if n == 0:
        raise DataError(f"{name}: empty data set (0 rows)")
    if d == 0:
        raise DataError(f"{name}: X has no feature columns")
    if y.ndim == 0 or len(y) != n:
        got = "a scalar" if y.ndim == 0 else f"{len(y)} rows"
        raise DataError(f"{name}: X has {n} rows but y has {got} (lengths must match)")
    with np.errstate(over="ignore", invalid="ignore"):
        X32 = X.astype(np.float32, copy=False)  # float32 input is not copied here
    _check_finite(X32, "X", name)
    return X32


def _class_labels(y: np.ndarray, n_classes, name: str, min_classes: int) -> np.ndarray:
    """Integral labels ``(n,)`` (or ``(n, 1)``) in range -> int32 ``(n,)``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: classification labels must be 1-D (n,), got shape {y.shape}")
    if y.dtype.kind == "f":
        _check_finite(y, "y", name)
        if not np.all(y == np.floor(y)):
            i = int(np.argmax(y != np.floor(y)))
            raise DataError(f"{name}: classification labels must be integers; "
                            f"row {i} has {y[i]!r}")
    _check_label_range(y.min(), y.max(), n_classes, name)
    y32 = y.astype(np.int32)
    present = np.unique(y32)
    if len(present) < min_classes:
        raise DataError(f"{name}: one-class data: every label is {int(present[0])}; "
                        "classification needs at least 2 classes")
    return y32


def _check_label_range(lo, hi, n_classes, name: str) -> None:
    """Labels ``lo..hi`` within ``[0, n_classes)``, or (``n_classes=None``) at least 0 and
    fewer than :data:`MAX_CLASSES`."""
    if n_classes is None:
        if lo < 0:
            raise DataError(f"{name}: labels out of range: found {lo}, labels must be >= 0")
        if hi >= MAX_CLASSES:
            raise DataError(f"{name}: labels out of range: found {hi}, more than "
                            f"{MAX_CLASSES} classes")
        return
    if (not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool)
            or n_classes < 1):
        raise DataError(f"{name}: n_classes must be a positive integer, got {n_classes!r}")
    n_classes = int(n_classes)
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise DataError(f"{name}: labels out of range: found {bad}, expected labels in "
                        f"[0, {n_classes})")


def _regression_targets(y: np.ndarray, name: str) -> np.ndarray:
    """Targets ``(n,)`` or ``(n, k)`` -> finite float32 ``(n, k)``."""
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] == 0:
        raise DataError(f"{name}: regression targets must be (n,) or (n, k), got {y.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        y32 = y.astype(np.float32)
    _check_finite(y32, "y", name)
    return y32


def _warn_constant_columns(X32: np.ndarray, name: str) -> None:
    const = np.flatnonzero(np.ptp(X32, axis=0) == 0)
    if len(const):
        shown = ", ".join(str(int(c)) for c in const[:10]) + (", ..." if len(const) > 10 else "")
        # stacklevel 3: the warning points at validate_arrays' caller
        warnings.warn(f"{name}: {len(const)} constant feature column(s) (index {shown}); "
                      "they carry no information", ConstantFeatureWarning, stacklevel=3)
