"""The layer-wise MLP backward: the delta rule, vectorised over a batch, pure and
jit / vmap / scan friendly. Returns the same pytree as ``jax.grad`` of
``jaxmlp.objective.batch_loss``; the activations' and losses' derivatives come from
``jaxmlp.registry`` (the same functions the gates use).

Notation: for a layer ``s = a @ W + b`` (the slides' s = W x, transposed for row-major
batches) and ``o = phi(s)``; ``delta = dLoss/ds``.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxmlp import registry
from jaxmlp.backprop.gates import _example_scale
from jaxmlp.errors import ConfigError
from jaxmlp.losses import _reduce
from jaxmlp.nn import weight_gradient


def _forward(params, x, act: registry.Activation, masks):
    """Forward pass caching what the backward needs.

    Returns:
        ``(s_L, inputs, kept)``: the last layer's pre-activation (B, d_out), each layer's
        input a_{l-1}, and per hidden layer the value phi' is formed from (the output o_l
        or the pre-activation s_l, as ``act.grad_from`` says; nothing for "none").
    """
    inputs, kept = [], []
    a = x
    last = len(params) - 1
    for i, layer in enumerate(params):
        inputs.append(a)
        s = a @ layer["W"] + layer["b"][None, :]
        if i == last:
            return s, inputs, kept
        o = act.forward(s)
        if act.grad_from != "none":
            kept.append(s if act.grad_from == "preact" else o)
        a = o if masks is None else o * masks[i][None, :]


def _backward(params, inputs, kept, delta, act: registry.Activation, masks):
    """The delta rule from the output layer down: dW_l = a_{l-1}^T delta_l,
    db_l = sum_batch delta_l, delta_{l-1} = (delta_l W_l^T) [* mask_{l-1}] * phi'(s_{l-1})."""
    last = len(params) - 1
    grads = [None] * len(params)
    for i in range(last, -1, -1):
        W = params[i]["W"]
        grads[i] = {"W": weight_gradient(inputs[i], delta, i > 0).astype(W.dtype),  # a^T delta
                    "b": jnp.sum(delta, axis=0).astype(params[i]["b"].dtype)}
        if i == 0:
            break
        g = delta @ W.T                      # dLoss/d(a_{i-1})
        if masks is not None:
            g = g * masks[i - 1][None, :]
        delta = g if act.backward is None else act.backward(g, kept[i - 1])
    return grads


def mlp_value_and_grad(params, x, y, *, activation="tanh", loss="ce", temperature=1.0,
                       weights=None, masks=None):
    """Loss and gradients of ``jaxmlp.objective.batch_loss`` by a hand-written backward pass.

    Forward caches each layer's input ``a_{l-1}`` and what phi' needs (the activation output
    ``o_l`` for tanh/sigmoid/ReLU, the pre-activation ``s_l`` for GELU/SiLU, nothing for
    identity); backward applies the delta rule from the output layer down::

        delta_L = dLoss/ds_L                              (the loss's registry gradient)
        dW_l = a_{l-1}^T delta_l,   db_l = sum_batch delta_l
        delta_{l-1} = (delta_l W_l^T) [* mask_{l-1}] * phi'(s_{l-1})

    with phi' from the registry (tanh: 1 - o^2, sigmoid: o (1 - o), ReLU: o > 0, ...), the same
    functions the gates use. The input-layer delta ``dLoss/dx`` is not computed.

    Args:
        params: list of ``{"W": (fan_in, fan_out), "b": (fan_out,)}`` layers (1 or more).
        x: (B, d_in) inputs (or (d_in,) for one example).
        y: (B,) integer labels or (B, K) soft / one-hot targets for ``loss="ce"``; (B, k)
            targets for a regression loss ("mse", "huber").
        activation: hidden activation, a ``jaxmlp.registry.ACTIVATIONS`` name (static).
        loss: a ``jaxmlp.registry.LOSSES`` name: "ce" (cross-entropy on
            softmax(logits / temperature)), "mse", "huber", ... (static).
        temperature: softmax temperature T > 0 (may be traced; ignored by regression losses).
        weights: optional (B,) example weights; loss = sum w_i l_i / max(sum w, 1).
        masks: optional per-hidden-layer unit masks, each (h_l,), multiplied into hidden
            outputs after the activation (as ``jaxmlp.nn.forward``).

    Returns:
        ``(loss, grads)``: scalar loss and a pytree with the structure, shapes and dtypes of
        ``jax.grad(batch_loss)`` (a list of ``{"W", "b"}`` dicts).
    """
    act, entry = registry.activation(activation), registry.loss(loss)
    if len(params) == 0:
        raise ConfigError("params must contain at least one layer")
    if jnp.ndim(x) == 1:  # one example: same objective as a batch of one
        x = x[None]
        y = jnp.asarray(y)[None]
        weights = None if weights is None else jnp.reshape(weights, (1,))
    s, inputs, kept = _forward(params, x, act, masks)
    entry.check_targets(s, y)
    per, delta = entry.value_and_grad(s, y, temperature, _example_scale(s, weights))
    return _reduce(per, weights), _backward(params, inputs, kept, delta, act, masks)


def mlp_grad(params, x, y, *, activation="tanh", loss="ce", temperature=1.0, weights=None,
             masks=None):
    """Only the gradients of ``mlp_value_and_grad`` (same pytree as ``jax.grad(batch_loss)``)."""
    return mlp_value_and_grad(params, x, y, activation=activation, loss=loss,
                              temperature=temperature, weights=weights, masks=masks)[1]
