"""Losses and probability functions, written per example and reduced where called.

The training losses themselves (per-example value, manual gradient, task) are entries of
``jaxmlp.registry``; this module reduces them over a batch and adds the probability maths
around them (softmax at a temperature, entropies, KL, distillation, accuracy).

All take scores (logits) and apply the temperature as ``log_softmax(logits / T)``, which is
stable for extreme logits and temperatures (never ``log(softmax(...))``). Natural logarithms
unless the name says ``bits``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxmlp import registry

LN2 = math.log(2.0)

# The training losses' per-example values, defined once in the registry.
mse_per_example = registry.mse_per_example
huber_per_example = registry.huber_per_example
cross_entropy_per_example = registry.cross_entropy_per_example


def softmax(z: jax.Array, temperature=1.0, axis: int = -1) -> jax.Array:
    """q_i = exp(z_i / T) / sum_j exp(z_j / T). Shape of ``z``; sums to 1 along ``axis``."""
    return jax.nn.softmax(z / temperature, axis=axis)


def log_softmax(z: jax.Array, temperature=1.0, axis: int = -1) -> jax.Array:
    """log q_i = z_i / T - logsumexp(z / T), computed stably."""
    return jax.nn.log_softmax(z / temperature, axis=axis)


def _reduce(per_example: jax.Array, weights: jax.Array | None) -> jax.Array:
    """Mean over the batch, or a weighted mean (weights 0 drop padded examples)."""
    if weights is None:
        return jnp.mean(per_example)
    weights = weights.astype(per_example.dtype)
    return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def mse(pred: jax.Array, target: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """The seed's MSE: mean over outputs, then over the batch. (B, k), (B, k) -> ()."""
    return _reduce(mse_per_example(pred, target), weights)


def cross_entropy(logits: jax.Array, labels: jax.Array, temperature=1.0,
                  weights: jax.Array | None = None) -> jax.Array:
    """Mean cross-entropy over the batch in nats (see ``cross_entropy_per_example``)."""
    return _reduce(cross_entropy_per_example(logits, labels, temperature), weights)


def cross_entropy_bits(logits: jax.Array, labels: jax.Array, temperature=1.0,
                       weights: jax.Array | None = None) -> jax.Array:
    """H_Pm(C) = -sum_i P(c_i) log2 Pm(c_i), batch mean, in bits (= nats / ln 2)."""
    return cross_entropy(logits, labels, temperature, weights) / LN2


def entropy(p: jax.Array, axis: int = -1) -> jax.Array:
    """H = -sum_i p_i ln p_i of probability vectors (0 ln 0 = 0), in nats."""
    return -jnp.sum(jax.scipy.special.xlogy(p, p), axis=axis)


def entropy_bits(p: jax.Array, axis: int = -1) -> jax.Array:
    """H(C) = -sum_i P(c_i) log2 P(c_i), in bits."""
    return entropy(p, axis) / LN2


def entropy_from_logits(logits: jax.Array, temperature=1.0) -> jax.Array:
    """Entropy (nats) of softmax(logits / T), per example, computed from log-probabilities."""
    logp = log_softmax(logits, temperature)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def kl_divergence(target_probs: jax.Array, logits: jax.Array, temperature=1.0) -> jax.Array:
    """KL(p || softmax(logits / T)) per example, in nats."""
    logq = log_softmax(logits, temperature)
    return jnp.sum(jax.scipy.special.xlogy(target_probs, target_probs) - target_probs * logq,
                   axis=-1)


def distillation_loss(student_logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array,
                      temperature=1.0, alpha=1.0, weights: jax.Array | None = None) -> jax.Array:
    """Knowledge distillation (Hinton et al. 2015).

    ``alpha * T^2 * CE(softmax(teacher/T), student at T) + (1 - alpha) * CE(labels, student)``.
    The T^2 factor keeps the soft-target gradients' scale independent of T.
    """
    soft = jax.lax.stop_gradient(softmax(teacher_logits, temperature))
    soft_term = cross_entropy_per_example(student_logits, soft, temperature) * temperature ** 2
    hard_term = cross_entropy_per_example(student_logits, labels)
    return _reduce(alpha * soft_term + (1.0 - alpha) * hard_term, weights)


def accuracy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Fraction of examples whose argmax score is the label (labels: indices or one-hot)."""
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        labels = jnp.argmax(labels, axis=-1)
    hits = (jnp.argmax(logits, axis=-1).astype(labels.dtype) == labels).astype(jnp.float32)
    return _reduce(hits, weights)


def loss_per_example(kind: str, outputs: jax.Array, targets: jax.Array, temperature=1.0):
    """Per-example loss (B,) by registry name ("ce" at temperature T, "mse", "huber", ...).

    A regression loss needs targets shaped like the outputs (a classification data set's
    labels are a ``ConfigError``, not a broadcasting error); "auto" is resolved by the caller
    (``jaxmlp.registry.resolve_loss``).
    """
    entry = registry.loss(kind)
    entry.check_targets(outputs, targets)
    return entry.per_example(outputs, targets, temperature)
