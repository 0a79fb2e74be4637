"""Calibration of a classifier's probabilities: reliability bins, expected calibration error,
and post-hoc temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Temperature scaling divides a trained model's logits by one scalar T > 0 fitted on held-out
data by negative log-likelihood. ``argmax(z / T) = argmax(z)``, so accuracy is unchanged; only
the confidence moves. The mean NLL of ``z / T`` is convex in ``1 / T`` (a log-sum-exp of a
linear function minus a linear term), so its derivative in ``log T`` changes sign once and
``fit_temperature`` finds the minimiser by bisection on that sign, with ``jax.grad`` of the
library's own ``cross_entropy``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.losses import cross_entropy

#: The bins of Guo et al.'s ECE: 15 equal-width confidence bins on (0, 1].
ECE_BINS = 15


def reliability_bins(probs, labels, n_bins: int = ECE_BINS) -> dict:
    """Per confidence bin: count, mean confidence and accuracy of the top class.

    Args:
        probs: (n, K) predicted probabilities.
        labels: (n,) integer classes.
        n_bins: equal-width bins of the top-class confidence on (0, 1]; a confidence equal to
            a bin's upper edge belongs to that bin.

    Returns:
        ``{"edges": (n_bins + 1,), "count": (n_bins,), "confidence": (n_bins,),
        "accuracy": (n_bins,)}`` as numpy arrays; empty bins hold NaN confidence and accuracy.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, conf, n_bins) / count
        accuracy = np.bincount(which, hit, n_bins) / count
    return {"edges": edges, "count": count, "confidence": confidence, "accuracy": accuracy}


def expected_calibration_error(probs, labels, n_bins: int = ECE_BINS) -> float:
    """ECE: sum over bins of (bin count / n) * |accuracy - mean confidence| (``reliability_bins``)."""
    b = reliability_bins(probs, labels, n_bins)
    used = b["count"] > 0
    gap = np.abs(b["accuracy"][used] - b["confidence"][used])
    return float(np.sum(b["count"][used] / b["count"].sum() * gap))


def fit_temperature(logits, labels, *, low: float = 1e-2, high: float = 1e2,
                    iters: int = 60) -> float:
    """The temperature T in [low, high] that minimises the mean cross-entropy of ``logits / T``.

    Args:
        logits: (n, K) pre-softmax scores of a trained model on held-out (validation) data.
        labels: (n,) integer classes.
        low, high: the search interval; a bound is returned when the minimum lies beyond it
            (e.g. ``low`` when every example is already classified right with margin).
        iters: bisection steps in log T (60 halve the interval to float precision).

    Returns:
        T as a Python float.
    """
    z = jnp.asarray(logits, jnp.float32)
    y = jnp.asarray(labels, jnp.int32)
    slope = lambda log_t: float(_nll_slope(jnp.float32(log_t), z, y))
    a, b = float(np.log(low)), float(np.log(high))
    if slope(a) >= 0:
        return float(low)
    if slope(b) <= 0:
        return float(high)
    for _ in range(iters):
        m = 0.5 * (a + b)
        a, b = (m, b) if slope(m) < 0 else (a, m)   # still descending at m: minimum to the right
    return float(np.exp(0.5 * (a + b)))


@jax.jit
def _nll_slope(log_t, logits, labels):
    """d/d(log T) of the mean cross-entropy of ``logits / T``."""
    return jax.grad(lambda lt: cross_entropy(logits, labels, temperature=jnp.exp(lt)))(log_t)
