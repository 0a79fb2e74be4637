"""Data sets, validation and train/val/test splits (numpy only).

Three sources, all offline:

* built-in names in :data:`DATASETS`: scikit-learn's bundled sets ("digits", "iris", "wine",
  "breast_cancer", "diabetes") and generated ones ("xor", "and", "or", "x2"/"square",
  "spirals", "car_sensor", "teacher");
* user files: a ``.csv`` with a header row, or a ``.npz`` with arrays ``X`` and ``y``;
* arrays passed directly, checked by :func:`validate_arrays`.

Everything is deterministic: generators take explicit seeds (0 by default) and splits use
``DataConfig.split_seed``. Arrays are numpy: ``X`` is ``(n, d)`` float32; ``y`` is ``(n,)``
int32 class labels in ``[0, n_classes)`` for classification or ``(n, k)`` float32 targets for
regression.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from jaxmlp.config import DataConfig
from jaxmlp.data.shuffle_split import split_indices
from jaxmlp.errors import ConfigError, DataError

TASKS = ("classification", "regression")

#: Data sets with fewer rows than this are not split: train = val = test = all rows.
TINY_N = 20

#: CSV targets with at most this many distinct integer values are classification under "auto".
CSV_MAX_AUTO_CLASSES = 20

#: Upper bound on an inferred class count (labels ``max + 1``), to reject garbage labels.
MAX_CLASSES = 100_000


class ConstantFeatureWarning(UserWarning):
    """A feature column has the same value in every row (it carries no information)."""


# ----------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set before splitting.

    Attributes:
        X: Inputs, shape ``(n, d)``, float32.
        y: Classification: labels, shape ``(n,)``, int32 in ``[0, n_classes)``.
            Regression: targets, shape ``(n, k)``, float32.
        task: ``"classification"`` or ``"regression"``.
        n_classes: Number of classes (classification), else ``None``.
        name: Short name (registry name or file stem).
        feature_names: Optional column names, length ``d``.
    """
    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None
    name: str
    feature_names: tuple[str, ...] | None = None

    @property
    def n_samples(self) -> int:
        """Number of rows ``n``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Input width ``d``."""
        return int(self.X.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width: ``n_classes`` for classification, ``k`` for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y.shape[1])


@dataclass(frozen=True, eq=False)
class Splits:
    """Train/validation/test arrays, standardised with train-only statistics.

    Attributes:
        X_train, X_val, X_test: Inputs, shapes ``(n_*, d)``, float32 (standardised when
            ``DataConfig.standardize``). An empty split has 0 rows.
        y_train, y_val, y_test: Labels ``(n_*,)`` int32, or regression targets ``(n_*, k)``
            float32 (standardised when ``DataConfig.standardize``).
        task, n_classes, name: As in :class:`Dataset`.
        x_mean, x_std: ``(d,)`` float32 statistics of the raw train inputs (std of a constant
            column is 1); zeros / ones when not standardising. ``X_raw = X * x_std + x_mean``.
        y_mean, y_std: ``(k,)`` float32 regression target statistics on the train split (or
            zeros / ones); ``None`` for classification.
        feature_names: Optional column names, length ``d``.
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    name: str
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def n_features(self) -> int:
        """Input width ``d``."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width: ``n_classes`` for classification, ``k`` for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.X_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation rows (may be 0)."""
        return int(self.X_val.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows (may be 0)."""
        return int(self.X_test.shape[0])


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------

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
        X32 = X.astype(np.float32)
    _check_finite(X32, "X", name)

    if task == "classification":
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
        lo, hi = y.min(), y.max()
        if n_classes is None:
            if lo < 0:
                raise DataError(f"{name}: labels out of range: found {lo}, labels must be >= 0")
            if hi >= MAX_CLASSES:
                raise DataError(f"{name}: labels out of range: found {hi}, more than "
                                f"{MAX_CLASSES} classes")
            n_classes = int(hi) + 1
        else:
            if (not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool)
                    or n_classes < 1):
                raise DataError(f"{name}: n_classes must be a positive integer, got {n_classes!r}")
            n_classes = int(n_classes)
            if lo < 0 or hi >= n_classes:
                bad = lo if lo < 0 else hi
                raise DataError(f"{name}: labels out of range: found {bad}, expected labels in "
                                f"[0, {n_classes})")
        y32 = y.astype(np.int32)
        present = np.unique(y32)
        if len(present) < min_classes:
            raise DataError(f"{name}: one-class data: every label is {int(present[0])}; "
                            "classification needs at least 2 classes")
    else:
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] == 0:
            raise DataError(f"{name}: regression targets must be (n,) or (n, k), got {y.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            y32 = y.astype(np.float32)
        _check_finite(y32, "y", name)

    if warn_constant and n > 1:
        const = np.flatnonzero(np.ptp(X32, axis=0) == 0)
        if len(const):
            shown = ", ".join(str(int(c)) for c in const[:10]) + (", ..." if len(const) > 10 else "")
            warnings.warn(f"{name}: {len(const)} constant feature column(s) (index {shown}); "
                          "they carry no information", ConstantFeatureWarning, stacklevel=2)
    return np.ascontiguousarray(X32), np.ascontiguousarray(y32)


def _dataset(X, y, task, n_classes, name, feature_names=None, *, validate=True,
             warn_constant=True) -> Dataset:
    if validate:
        X, y = validate_arrays(X, y, task, n_classes, name, warn_constant=warn_constant)
        if task == "classification" and n_classes is None:
            n_classes = int(y.max()) + 1
    return Dataset(X=X, y=y, task=task, n_classes=n_classes if task == "classification" else None,
                   name=name, feature_names=tuple(feature_names) if feature_names else None)


# ----------------------------------------------------------------------------------------
# Generated data sets
# ----------------------------------------------------------------------------------------

_LOGIC_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
_LOGIC_Y = {"xor": (0, 1, 1, 0), "and": (0, 0, 0, 1), "or": (0, 1, 1, 1)}


def make_logic(name: str) -> Dataset:
    """The four boolean points with an XOR / AND / OR label.

    Args:
        name: ``"xor"``, ``"and"`` or ``"or"``.

    Returns:
        Dataset with X ``(4, 2)`` = ``[[0,0],[0,1],[1,0],[1,1]]`` and y ``(4,)`` in {0, 1}
        (xor: 0,1,1,0; and: 0,0,0,1; or: 0,1,1,1), 2 classes.
    """
    key = str(name).lower()
    if key not in _LOGIC_Y:
        raise ConfigError(f"logic data set must be one of xor, and, or; got {name!r}")
    return Dataset(X=_LOGIC_X.copy(), y=np.array(_LOGIC_Y[key], dtype=np.int32),
                   task="classification", n_classes=2, name=key, feature_names=("x1", "x2"))


def _check_n(n, what="n") -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def _check_noise(noise) -> float:
    if (not isinstance(noise, (int, float, np.floating)) or isinstance(noise, bool)
            or not math.isfinite(noise) or noise < 0):
        raise ConfigError(f"noise must be a non-negative number, got {noise!r}")
    return float(noise)


def make_x2(n: int = 512, noise: float = 0.0, seed: int = 0) -> Dataset:
    """The parabola y = x^2 on ``n`` evenly spaced points of [-1, 1].

    Args:
        n: Number of points.
        noise: Standard deviation of Gaussian noise added to y.
        seed: Seed of the noise.

    Returns:
        Regression Dataset, X ``(n, 1)``, y ``(n, 1)``.
    """
    n, noise = _check_n(n), _check_noise(noise)
    x = np.linspace(-1.0, 1.0, n)
    y = x ** 2
    if noise > 0:
        y = y + noise * np.random.default_rng(seed).standard_normal(n)
    return Dataset(X=x[:, None].astype(np.float32), y=y[:, None].astype(np.float32),
                   task="regression", n_classes=None, name="x2", feature_names=("x",))


def make_spirals(n: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaved spirals (1.5 turns each, outer radius 1), one per class.

    Point ``i`` of class ``c`` sits at radius ``r = t`` and angle ``3*pi*t + c*pi`` with
    ``t`` uniform in [0.05, 1]; neighbouring arms of the two classes are 1/3 apart.

    Args:
        n: Number of points (class 0 gets the extra one when ``n`` is odd).
        noise: Gaussian jitter of each coordinate, in units of the arm gap (1/3), so the
            default 0.1 is a standard deviation of 0.033 and 1.0 mostly blurs the arms.
        seed: Generation seed.

    Returns:
        Classification Dataset, X ``(n, 2)`` in roughly [-1, 1]^2, y ``(n,)`` in {0, 1}.
    """
    n, noise = _check_n(n), _check_noise(noise)
    rng = np.random.default_rng(seed)
    y = (np.arange(n) >= (n + 1) // 2).astype(np.int32)
    t = rng.uniform(0.05, 1.0, n)
    ang = 3 * np.pi * t + np.pi * y
    X = np.stack([t * np.cos(ang), t * np.sin(ang)], axis=1)
    X = X + (noise / 3.0) * rng.standard_normal(X.shape)
    perm = rng.permutation(n)
    return Dataset(X=X[perm].astype(np.float32), y=y[perm], task="classification", n_classes=2,
                   name="spirals", feature_names=("x1", "x2"))


#: Beam angles (degrees, left negative) of the eight car rangefinders.
CAR_SENSOR_ANGLES = (-90, -64, -39, -13, 13, 39, 64, 90)


def car_sensor_targets(D: np.ndarray) -> np.ndarray:
    """The noiseless car controller: sensor distances -> (steering, throttle).

    ``steering = tanh(2 * sum_k w_k (d_left_k - d_right_k))`` with weights
    ``w = (0.5, 1, 1.5, 2)`` from the outer to the inner pair of beams (positive steers
    towards the freer side, in (-1, 1)); ``throttle = sigmoid(10 (min(d_3, d_4) - 0.3)) *
    (1 - 0.5 steering^2)`` (slow down when the road ahead is close or when turning, in (0, 1)).

    Args:
        D: Distances, shape ``(n, 8)`` in [0, 1], beams ordered left to right.

    Returns:
        Targets, shape ``(n, 2)``, float64.
    """
    D = np.asarray(D, dtype=np.float64)
    w = np.array([0.5, 1.0, 1.5, 2.0])
    diff = (D[:, :4] - D[:, ::-1][:, :4]) @ w
    steer = np.tanh(2.0 * diff)
    front = np.minimum(D[:, 3], D[:, 4])
    throttle = 1.0 / (1.0 + np.exp(-10.0 * (front - 0.3))) * (1.0 - 0.5 * steer ** 2)
    return np.stack([steer, throttle], axis=1)


def make_car_sensor(n: int = 4000, noise: float = 0.05, seed: int = 0) -> Dataset:
    """The slides' regression example: 8 rangefinder readings -> steering angle and throttle.

    Distances are uniform in [0, 1] at the angles :data:`CAR_SENSOR_ANGLES`; targets come from
    :func:`car_sensor_targets` (a smooth nonlinear controller, far from linear) plus Gaussian
    noise of standard deviation ``noise``.

    Args:
        n: Number of readings.
        noise: Target noise standard deviation.
        seed: Generation seed.

    Returns:
        Regression Dataset, X ``(n, 8)``, y ``(n, 2)`` = (steering, throttle).
    """
    n, noise = _check_n(n), _check_noise(noise)
    rng = np.random.default_rng(seed)
    D = rng.uniform(0.0, 1.0, (n, 8))
    Y = car_sensor_targets(D) + noise * rng.standard_normal((n, 2))
    return Dataset(X=D.astype(np.float32), y=Y.astype(np.float32), task="regression",
                   n_classes=None, name="car_sensor",
                   feature_names=tuple(f"dist_{a:+d}" for a in CAR_SENSOR_ANGLES))


def make_teacher(n: int = 10000, n_features: int = 784, n_classes: int = 10,
                 hidden: tuple[int, ...] = (256,), seed: int = 0, dtype=np.float32,
                 label_noise: float = 0.0) -> Dataset:
    """Labels from a fixed random tanh "teacher" MLP on Gaussian inputs.

    The teacher (weights ``N(0, 1/fan_in)``, tanh hidden layers, unit-norm output columns and
    per-class output biases calibrated on a fixed sample so classes are roughly balanced)
    depends only on ``seed`` and the shapes, never on ``n``: a larger ``n`` extends the same
    problem. Inputs are drawn directly in ``dtype`` and the teacher runs in chunks, so
    200,000 x 784 needs little beyond the 0.6 GB of X.

    Args:
        n: Number of examples.
        n_features: Input width ``d``.
        n_classes: Number of classes (>= 2).
        hidden: Teacher hidden widths.
        seed: Seed of the teacher and of the inputs.
        dtype: Float dtype of X (float32, or float64).
        label_noise: Fraction of labels replaced by a uniformly random class.

    Returns:
        Classification Dataset, X ``(n, n_features)`` of ``dtype`` ~ N(0, 1), y ``(n,)`` int32.
    """
    n, d = _check_n(n), _check_n(n_features, "n_features")
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    hidden = tuple(_check_n(h, "hidden width") for h in hidden)
    if not (0.0 <= float(label_noise) <= 1.0):
        raise ConfigError(f"label_noise must be in [0, 1], got {label_noise!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ConfigError(f"dtype must be a float dtype, got {dtype}")
    teacher_rng, data_rng, noise_rng = (np.random.default_rng(s)
                                        for s in np.random.SeedSequence(seed).spawn(3))
    Ws, fan = [], d
    for h in hidden:
        Ws.append((teacher_rng.standard_normal((fan, h)) / np.sqrt(fan)).astype(np.float32))
        fan = h
    W_out = teacher_rng.standard_normal((fan, n_classes))
    W_out = (W_out / np.linalg.norm(W_out, axis=0)).astype(np.float32)

    def logits(x):
        a = x.astype(np.float32, copy=False)
        for W in Ws:
            a = np.tanh(a @ W)
        return a @ W_out

    # Balance classes: shift per-class biases until argmax frequencies on a fixed
    # calibration sample are close to uniform (damped multiplicative updates).
    calib = logits(teacher_rng.standard_normal((8192, d), dtype=np.float32)).astype(np.float64)
    b = np.zeros(n_classes)
    for it in range(200):
        freq = np.bincount(np.argmax(calib + b, axis=1), minlength=n_classes) / len(calib)
        b -= (0.5 / (1 + it / 25)) * np.log(np.maximum(freq * n_classes, 0.05))
    b = b.astype(np.float32)

    X = data_rng.standard_normal((n, d), dtype=dtype if dtype in (np.float32, np.float64)
                                 else np.float32).astype(dtype, copy=False)
    y = np.empty(n, dtype=np.int32)
    chunk = 16384
    for s in range(0, n, chunk):
        y[s:s + chunk] = np.argmax(logits(X[s:s + chunk]) + b, axis=1)
    if label_noise > 0:
        flip = noise_rng.random(n) < label_noise
        y[flip] = noise_rng.integers(0, n_classes, int(flip.sum()), dtype=np.int32)
    return Dataset(X=X, y=y, task="classification", n_classes=int(n_classes), name="teacher")


# ----------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------

def _subsample(ds: Dataset, n_samples: int | None) -> Dataset:
    """Keep a seeded (seed 0) random subset of ``n_samples`` rows, if fewer than ``n``."""
    if n_samples is None or n_samples >= ds.n_samples:
        return ds
    idx = np.sort(np.random.default_rng(0).choice(ds.n_samples, n_samples, replace=False))
    X, y = ds.X[idx], ds.y[idx]
    if ds.task == "classification" and len(np.unique(y)) < 2:
        raise DataError(f"{ds.name}: n_samples={n_samples} keeps only one class")
    return Dataset(X=X, y=y, task=ds.task, n_classes=ds.n_classes, name=ds.name,
                   feature_names=ds.feature_names)


def _bundled(task: str, name: str):
    def load(n_samples: int | None = None, noise: float | None = None) -> Dataset:
        from jaxmlp.data.bundled import FEATURE_NAMES, load_bundled  # the files, without importing sklearn
        X, y = load_bundled(name)
        X = np.asarray(X, dtype=np.float32)
        if task == "classification":
            y = np.asarray(y, dtype=np.int32)
            ds = Dataset(X=X, y=y, task=task, n_classes=int(y.max()) + 1, name=name,
                         feature_names=FEATURE_NAMES[name])
        else:
            y = np.asarray(y, dtype=np.float32).reshape(len(X), -1)
            ds = Dataset(X=X, y=y, task=task, n_classes=None, name=name,
                         feature_names=FEATURE_NAMES[name])
        return _subsample(ds, n_samples)
    load.__doc__ = (f"scikit-learn's bundled ``{name}`` set ({task}), read from its files; "
                    "``n_samples`` keeps a seeded random subset, ``noise`` is ignored.")
    return load


def _logic(name: str):
    def load(n_samples: int | None = None, noise: float | None = None) -> Dataset:
        return make_logic(name)
    load.__doc__ = f"The 4 boolean points labelled by {name.upper()}; n_samples/noise ignored."
    return load


def _x2(n_samples=None, noise=None) -> Dataset:
    """y = x^2 on [-1, 1]: default 512 points, noise 0."""
    return make_x2(512 if n_samples is None else n_samples, 0.0 if noise is None else noise)


def _spirals(n_samples=None, noise=None) -> Dataset:
    """Two spirals: default 1000 points, noise 0.1."""
    return make_spirals(1000 if n_samples is None else n_samples, 0.1 if noise is None else noise)


def _car(n_samples=None, noise=None) -> Dataset:
    """Car sensors -> steering, throttle: default 4000 readings, noise 0.05."""
    return make_car_sensor(4000 if n_samples is None else n_samples,
                           0.05 if noise is None else noise)


def _teacher(n_samples=None, noise=None) -> Dataset:
    """Teacher-MLP labels: default 10000 x 64 (not 784, to stay quick), 10 classes, hidden 256;
    ``noise`` is the label-noise fraction (default 0)."""
    return make_teacher(10000 if n_samples is None else n_samples, n_features=64,
                        label_noise=0.0 if noise is None else noise)


#: Built-in data sets: name -> ``loader(n_samples=None, noise=None) -> Dataset``.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": _bundled("classification", "digits"),
    "iris": _bundled("classification", "iris"),
    "wine": _bundled("classification", "wine"),
    "breast_cancer": _bundled("classification", "breast_cancer"),
    "diabetes": _bundled("regression", "diabetes"),
    "xor": _logic("xor"),
    "and": _logic("and"),
    "or": _logic("or"),
    "x2": _x2,
    "square": _x2,
    "spirals": _spirals,
    "car_sensor": _car,
    "teacher": _teacher,
}


# ----------------------------------------------------------------------------------------
# User files
# ----------------------------------------------------------------------------------------

def _check_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"data path is a directory, not a file: {p}")
    if not os.access(p, os.R_OK):
        raise DataError(f"data file is not readable (permission denied): {p}")
    return p


def _check_task(task: str) -> None:
    if task not in ("auto",) + TASKS:
        raise ConfigError(f"task must be auto, classification or regression, got {task!r}")


def _parse_float(cell: str) -> float:
    return float(cell.strip())


def load_csv(path, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Load a numeric CSV file with a header row.

    Args:
        path: File path.
        target: Name of the target column (default: the last column); the other columns are
            the features.
        task: ``"auto"`` (classification if every target value is an integer and there are at
            most 20 distinct values, else regression), ``"classification"`` or ``"regression"``.

    Returns:
        Dataset named after the file stem. Classification labels are the sorted distinct target
        values mapped to ``0..K-1``; regression y is ``(n, 1)``.

    Raises:
        DataError: missing/unreadable file, no header or no data rows, a row with the wrong
            number of fields (with its line number), a non-numeric cell (row and column), an
            unknown target column, non-finite values, non-integral classification targets.
    """
    _check_task(task)
    p = _check_file(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header, rows, lines = None, [], []
            for rec in reader:
                if not rec or all(c.strip() == "" for c in rec) and len(rec) <= 1:
                    continue  # blank line
                if header is None:
                    header = [c.strip() for c in rec]
                    continue
                rows.append(rec)
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not a UTF-8 text CSV file ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{p}: malformed CSV: {e}") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read file: {e}") from None
    if header is None:
        raise DataError(f"{p}: empty CSV file (a header row is required)")
    m = len(header)
    if m < 2:
        raise DataError(f"{p}: need at least 2 columns (features and a target), header has {m}")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(f"{p}: duplicate column name(s) in header: {', '.join(map(repr, dup))}")
    numeric_header = True
    for h in header:
        try:
            _parse_float(h)
        except ValueError:
            numeric_header = False
            break
    if numeric_header:
        raise DataError(f"{p}: the first row {header!r} looks numeric; a header row with column "
                        "names is required")
    if not rows:
        raise DataError(f"{p}: CSV has a header but no data rows")
    if target is None:
        t = m - 1
    elif target in header:
        t = header.index(target)
    else:
        raise DataError(f"{p}: target column {target!r} not found; available columns: "
                        f"{', '.join(header)}")
    data = np.empty((len(rows), m), dtype=np.float64)
    for i, (rec, line) in enumerate(zip(rows, lines)):
        if len(rec) != m:
            raise DataError(f"{p}: line {line} has {len(rec)} field(s), expected {m} "
                            "(ragged or truncated row)")
        for j, cell in enumerate(rec):
            try:
                data[i, j] = _parse_float(cell)
            except ValueError:
                shown = cell if len(cell) <= 40 else cell[:40] + "..."
                raise DataError(f"{p}: non-numeric value {shown!r} in data row {i + 1} "
                                f"(line {line}), column {header[j]!r}") from None
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(data.astype(np.float32))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{p}: {int(bad.sum())} non-finite value(s) (NaN/inf, or too large for "
                        f"float32); first in data row {i + 1} (line {lines[i]}), "
                        f"column {header[j]!r}")
    feat_idx = [j for j in range(m) if j != t]
    X, yv = data[:, feat_idx], data[:, t]
    feature_names = tuple(header[j] for j in feat_idx)
    name = p.stem
    integral = bool(np.all(yv == np.floor(yv)))
    if task == "auto":
        task = ("classification" if integral and len(np.unique(yv)) <= CSV_MAX_AUTO_CLASSES
                else "regression")
    if task == "classification":
        if not integral:
            i = int(np.argmax(yv != np.floor(yv)))
            raise DataError(f"{name}: classification target column {header[t]!r} must hold "
                            f"integers; data row {i + 1} has {yv[i]!r}")
        classes, y = np.unique(yv, return_inverse=True)
        return _dataset(X, y.astype(np.int32), task, len(classes), name, feature_names)
    return _dataset(X, yv[:, None], task, None, name, feature_names)


def load_npz(path, *, task: str = "auto") -> Dataset:
    """Load arrays ``X`` ``(n, d)`` and ``y`` ``(n,)`` or ``(n, k)`` from an ``.npz`` file.

    Args:
        path: File path (read with ``allow_pickle=False``).
        task: ``"auto"``: a 1-D integer (or bool) y is classification with
            ``n_classes = max(y) + 1``, anything else regression (1-D y becomes ``(n, 1)``).
            ``"classification"`` also accepts integral float labels; ``"regression"`` casts
            y to float32.

    Returns:
        Dataset named after the file stem.

    Raises:
        DataError: missing/unreadable/corrupted file, missing ``X`` or ``y``, or any
            :func:`validate_arrays` failure (negative labels are "labels out of range").
    """
    _check_task(task)
    p = _check_file(path)
    try:
        with open(p, "rb") as fh:
            obj = np.load(fh, allow_pickle=False)
            if not isinstance(obj, np.lib.npyio.NpzFile):
                raise DataError(f"{p}: not an .npz archive (expected arrays 'X' and 'y')")
            with obj:
                missing = [k for k in ("X", "y") if k not in obj.files]
                if missing:
                    raise DataError(f"{p}: missing array(s) {', '.join(map(repr, missing))} in "
                                    f".npz; found {', '.join(map(repr, obj.files)) or 'none'}")
                X, y = np.asarray(obj["X"]), np.asarray(obj["y"])
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{p}: corrupted .npz file (array header asks for too much memory)") from None
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError, TypeError,
            IndexError, RuntimeError, NotImplementedError, OverflowError, SyntaxError) as e:
        raise DataError(f"{p}: cannot read .npz file (truncated or corrupted?): "
                        f"{type(e).__name__}: {e}") from None
    name = p.stem
    if task == "auto":
        task = "classification" if (y.ndim == 1 and y.dtype.kind in "biu") else "regression"
    if task == "classification" and y.dtype.kind == "b":
        y = y.astype(np.int32)
    return _dataset(X, y, task, None, name)


def save_npz(path, X, y) -> None:
    """Write ``X`` and ``y`` to a compressed ``.npz`` readable by :func:`load_npz`.

    Args:
        path: Destination (should end in ``.npz``).
        X: Inputs ``(n, d)``.
        y: Labels ``(n,)`` (integers: classification on reload) or targets ``(n,)``/``(n, k)``.
    """
    with open(path, "wb") as f:
        np.savez_compressed(f, X=np.asarray(X), y=np.asarray(y))


# ----------------------------------------------------------------------------------------
# Config entry points
# ----------------------------------------------------------------------------------------

def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the data set ``cfg.dataset``: a :data:`DATASETS` name or a .csv/.npz path.

    For built-in names, ``cfg.n_samples`` / ``cfg.noise`` override the generator defaults
    (scikit-learn sets take a seeded random subset of ``n_samples`` rows; the boolean sets
    ignore both). For files, ``cfg.target`` (CSV) and ``cfg.task`` apply.

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
        ds = DATASETS[key](n_samples=cfg.n_samples, noise=cfg.noise)
        if cfg.task != "auto" and cfg.task != ds.task:
            raise ConfigError(f"data set {key!r} is a {ds.task} set; task={cfg.task!r} "
                              "does not apply")
        return ds
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return load_csv(name, target=cfg.target, task=cfg.task)
    if suffix == ".npz":
        if cfg.target is not None:
            raise ConfigError("target applies to CSV files only, not .npz")
        return load_npz(name, task=cfg.task)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                    "or give a .csv/.npz path")


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
    n = ds.n_samples
    idx = np.arange(n)
    if n < TINY_N:
        tr = idx
        va = idx if cfg.val_fraction > 0 else idx[:0]
        te = idx if cfg.test_fraction > 0 else idx[:0]
    else:
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


def load_splits(cfg: DataConfig) -> Splits:
    """``make_splits(load_dataset(cfg), cfg)``.

    Args:
        cfg: The data configuration.

    Returns:
        The Splits.
    """
    return make_splits(load_dataset(cfg), cfg)
