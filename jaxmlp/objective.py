"""Gradients by automatic differentiation: the batch objective, its value-and-grad, and
per-example gradients with ``vmap``."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmlp.losses import _reduce, loss_per_example
from jaxmlp.nn import dense, forward, get_activation


def batch_loss(params, x, y, *, activation: str = "tanh", loss: str = "ce", temperature=1.0,
               weights=None, masks=None, compute_dtype=None) -> jax.Array:
    """The training objective: mean (or ``weights``-weighted mean) per-example loss.

    Args:
        params: MLP params.
        x: (B, d_in) inputs.
        y: (B,) integer labels / (B, K) soft targets for ``loss="ce"``; (B, k) targets for a
            regression loss ("mse", "huber").
        activation: hidden activation (a ``jaxmlp.registry.ACTIVATIONS`` name).
        loss: a ``jaxmlp.registry.LOSSES`` name: "ce" (cross-entropy on
            softmax(logits / temperature)), "mse", "huber", ...
        temperature: softmax temperature T (ignored by the regression losses).
        weights: optional (B,) example weights; padded examples carry 0.
        masks: optional hidden-unit masks (see ``jaxmlp.nn.forward``).

    Returns:
        Scalar loss.
    """
    out = forward(params, x, activation=activation, masks=masks, compute_dtype=compute_dtype)
    return _reduce(loss_per_example(loss, out, y, temperature), weights)


def loss_and_grad(params, x, y, **kwargs):
    """``(loss, grads)`` of ``batch_loss`` by autodiff; grads is a pytree shaped like
    ``params``. Keyword arguments as ``batch_loss``; the hand-derived counterpart is
    ``jaxmlp.backprop.mlp_value_and_grad``."""
    return jax.value_and_grad(batch_loss)(params, x, y, **kwargs)


def value_and_grad(params, x, y, **kwargs):
    """Deprecated alias of ``loss_and_grad`` (this name shadows ``jax.value_and_grad``)."""
    return loss_and_grad(params, x, y, **kwargs)


def per_example_grads(params, x, y, *, activation="tanh", loss="ce", temperature=1.0):
    """Gradients of each example's loss: every leaf gains a leading batch axis (B, ...).

    Materialises B copies of the params; prefer ``per_example_grad_norms`` when only norms
    are needed.
    """
    def one(xi, yi):
        return jax.grad(batch_loss)(params, xi[None], yi[None], activation=activation,
                                    loss=loss, temperature=temperature)
    return jax.vmap(one)(x, y)


def per_example_grad_norms(params, x, y, *, activation="tanh", loss="ce", temperature=1.0):
    """Global L2 norm of each example's gradient, shape (B,).

    Uses the outer-product structure of dense-layer gradients, dW_i = a_i^T delta_i, so
    ||dW_i||^2 = ||a_i||^2 ||delta_i||^2 without materialising B weight gradients: one
    backward pass with respect to the pre-activations gives every delta_i.
    """
    B = x.shape[0]

    def loss_from_preacts(zs):
        # zs: per-layer additive perturbations of the pre-activations, each (B, fan_out).
        h = x
        acts = []
        phi = get_activation(activation)
        for i, layer in enumerate(params):
            acts.append(h)
            s = dense(layer, h, hidden_input=i > 0) + zs[i]
            h = s if i == len(params) - 1 else phi(s)
        # Sum (not mean) of per-example losses: each row of d/dz is that example's delta.
        return jnp.sum(loss_per_example(loss, h, y, temperature)), acts

    zeros = [jnp.zeros((B, layer["W"].shape[1]), x.dtype) for layer in params]
    deltas, acts = jax.grad(loss_from_preacts, has_aux=True)(zeros)
    sq = jnp.zeros((B,), x.dtype)
    for a, d in zip(acts, deltas):
        sq = sq + jnp.sum(a * a, axis=1) * jnp.sum(d * d, axis=1) + jnp.sum(d * d, axis=1)
    return jnp.sqrt(sq)
