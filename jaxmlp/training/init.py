"""A run's starting point: its layer sizes, the parameter-initialisation key, the initial
params (muP rescaling included) and the initial train state around them, or a saved state put
back into that structure (``restore_leaves``).

Sweeps build their members from these same functions (a member of width ``w`` has the sizes
``model_sizes(model, d_in, d_out, width=w)``), so a sweep's model starts exactly where
``fit`` would start it.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

import numpy as np

from jaxmlp.config import ModelConfig
from jaxmlp.errors import CheckpointError
from jaxmlp.nn import init_mlp, mup_multipliers, scale_layers
from jaxmlp.training.optim import training_optimizer
from jaxmlp.training.spec import Spec


def init_key(seed) -> jax.Array:
    """The parameter-initialisation key of a run with ``seed`` (the data order is drawn by
    ``data_order`` from the same seed)."""
    return jax.random.PRNGKey(seed)


def model_sizes(model: ModelConfig, n_features: int, n_outputs: int, *,
                width: int | None = None) -> list[int]:
    """Layer sizes ``[d_in, h_1, ..., h_k, d_out]`` of ``model``; with ``width`` (a sweep's
    width axis) every hidden layer has that width instead of ``model.hidden``'s."""
    hidden = model.hidden if width is None else [width] * len(model.hidden)
    return [n_features, *hidden, n_outputs]


def init_multipliers(model: ModelConfig, sizes: Sequence[int]):
    """Per-layer init std multipliers (None under the standard parametrisation; muP scales
    the output layer)."""
    if model.parametrization != "mup":
        return None
    return mup_multipliers(sizes, model.base_width)[0]


def layer_lr_multipliers(model: ModelConfig, sizes):
    """Per-layer learning-rate multipliers (None under the standard parametrisation)."""
    if model.parametrization != "mup":
        return None
    return mup_multipliers(sizes, model.base_width)[1]


def init_model(init_key, model: ModelConfig, sizes) -> list:
    """Initial params for ``model`` with layer ``sizes`` (muP rescales the output layer)."""
    params = init_mlp(init_key, sizes, init=model.init, activation=model.activation)
    mults = init_multipliers(model, sizes)
    if mults is not None:
        params = scale_layers(params, mults)
    return params


def init_state(spec: Spec, params, *, momentum: float = 0.0) -> dict:
    """A fresh train state around ``params`` (the data order comes from (seed, epoch) on the
    host, so the state holds no RNG key)."""
    state = {
        "params": params,
        "opt_state": training_optimizer(spec, momentum=momentum).init(params),
        "step": jnp.zeros((), jnp.int32),
        "epoch": jnp.zeros((), jnp.int32),
        "best_loss": jnp.full((), jnp.inf, jnp.float32),
        "best_epoch": jnp.full((), -1, jnp.int32),
        "bad_epochs": jnp.zeros((), jnp.int32),
        "stopped": jnp.zeros((), bool),
        "diverged": jnp.zeros((), bool),
        "diverged_step": jnp.full((), -1, jnp.int32),
    }
    if spec.keep_best:
        state["best_params"] = jax.tree.map(jnp.copy, params)
    return state


def restore_leaves(template, leaves, what: str = "checkpoint"):
    """Saved ``leaves`` (host arrays in ``jax.tree`` order) as a tree shaped like ``template``
    (a state of the same config, concrete or abstract), still host arrays;
    ``CheckpointError`` naming ``what`` if their number, a shape or a dtype differs."""
    expected, treedef = jax.tree.flatten(template)
    leaves = [np.asarray(a) for a in leaves]
    if len(leaves) != len(expected):
        raise CheckpointError(f"{what} has {len(leaves)} arrays, the config expects {len(expected)}")
    for i, (t, a) in enumerate(zip(expected, leaves)):
        if tuple(np.shape(t)) != a.shape:
            raise CheckpointError(f"{what} array {i} has shape {a.shape}, expected {np.shape(t)}")
        if np.dtype(t.dtype) != a.dtype:
            raise CheckpointError(f"{what} array {i} has dtype {a.dtype}, expected {t.dtype}")
    return jax.tree.unflatten(treedef, leaves)
