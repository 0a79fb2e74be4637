"""Generated data sets: boolean logic, the parabola, two spirals, car sensors, a teacher MLP.

Every generator is deterministic (explicit seed, 0 by default), numpy only, and returns a
:class:`~jaxmlp.data.dataset.Dataset`.
"""
from __future__ import annotations

import math

import numpy as np

from jaxmlp.data.dataset import Dataset
from jaxmlp.errors import ConfigError
from jaxmlp.memory import check_fits

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


def _check_n(n, what="n", row_bytes: int = 0) -> int:
    """``n`` as an int; ``ConfigError`` unless a positive integer, or (with ``row_bytes``, what
    one generated row holds at least) when ``n`` rows cannot fit in the memory available."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{what} must be a positive integer, got {n!r}")
    if row_bytes:
        check_fits(n * row_bytes, f"a generated data set of {n} rows",
                   "ask for fewer rows (--n-samples)")
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
    n, noise = _check_n(n, row_bytes=16), _check_noise(noise)
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
    n, noise = _check_n(n, row_bytes=24), _check_noise(noise)
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
    n, noise = _check_n(n, row_bytes=80), _check_noise(noise)
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
    n, d, hidden, dtype = _teacher_args(n, n_features, n_classes, hidden, label_noise, dtype)
    teacher_rng, data_rng, noise_rng = (np.random.default_rng(s)
                                        for s in np.random.SeedSequence(seed).spawn(3))
    Ws, W_out = _teacher_weights(teacher_rng, d, hidden, n_classes)
    calib = _teacher_logits(teacher_rng.standard_normal((8192, d), dtype=np.float32),
                            Ws, W_out).astype(np.float64)
    b = _balancing_biases(calib, n_classes)

    X = data_rng.standard_normal((n, d), dtype=dtype if dtype in (np.float32, np.float64)
                                 else np.float32).astype(dtype, copy=False)
    y = np.empty(n, dtype=np.int32)
    chunk = 16384
    for s in range(0, n, chunk):
        y[s:s + chunk] = np.argmax(_teacher_logits(X[s:s + chunk], Ws, W_out) + b, axis=1)
    if label_noise > 0:
        flip = noise_rng.random(n) < label_noise
        y[flip] = noise_rng.integers(0, n_classes, int(flip.sum()), dtype=np.int32)
    return Dataset(X=X, y=y, task="classification", n_classes=int(n_classes), name="teacher")


def _teacher_args(n, n_features, n_classes, hidden, label_noise, dtype):
    """:func:`make_teacher`'s arguments checked: ``(n, d, hidden, dtype)``."""
    d = _check_n(n_features, "n_features")
    n = _check_n(n, row_bytes=d * np.dtype(dtype).itemsize if np.dtype(dtype).kind == "f" else 0)
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    hidden = tuple(_check_n(h, "hidden width") for h in hidden)
    if not (0.0 <= float(label_noise) <= 1.0):
        raise ConfigError(f"label_noise must be in [0, 1], got {label_noise!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ConfigError(f"dtype must be a float dtype, got {dtype}")
    return n, d, hidden, dtype


def _teacher_weights(rng, d: int, hidden: tuple[int, ...], n_classes: int):
    """Hidden weights ``N(0, 1/fan_in)`` and unit-norm output columns, float32."""
    Ws, fan = [], d
    for h in hidden:
        Ws.append((rng.standard_normal((fan, h)) / np.sqrt(fan)).astype(np.float32))
        fan = h
    W_out = rng.standard_normal((fan, n_classes))
    W_out = (W_out / np.linalg.norm(W_out, axis=0)).astype(np.float32)
    return Ws, W_out


def _teacher_logits(x: np.ndarray, Ws, W_out) -> np.ndarray:
    a = x.astype(np.float32, copy=False)
    for W in Ws:
        a = np.tanh(a @ W)
    return a @ W_out


def _balancing_biases(calib: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class biases that make argmax frequencies on the calibration logits close to
    uniform (damped multiplicative updates)."""
    b = np.zeros(n_classes)
    for it in range(200):
        freq = np.bincount(np.argmax(calib + b, axis=1), minlength=n_classes) / len(calib)
        b -= (0.5 / (1 + it / 25)) * np.log(np.maximum(freq * n_classes, 0.05))
    return b.astype(np.float32)
