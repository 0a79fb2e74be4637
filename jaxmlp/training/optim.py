"""The optimizer of a run: an Optax transformation by name, the momentum a config means, and
the learning-rate schedules.

Hyperparameters that vary per model (learning rate, momentum) are injected as traced values
(``optax.inject_hyperparams``), so runs and sweep members that differ only in them share one
compiled program.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax

from jaxmlp.errors import ConfigError

if TYPE_CHECKING:
    from jaxmlp.training.spec import Spec

SGD_FAMILY = ("sgd", "momentum", "nesterov")


def uses_momentum(optimizer: str, momentum: float = 0.0, nesterov: bool = False) -> bool:
    """Whether the SGD update of ``optimizer`` keeps a momentum trace: "momentum" and
    "nesterov" always do, "sgd" with a positive ``momentum`` or ``nesterov``; other optimizers
    have none of their own (the one definition; a sweep asks it of its largest momentum)."""
    if optimizer in ("momentum", "nesterov"):
        return True
    return optimizer == "sgd" and (momentum > 0.0 or bool(nesterov))


def effective_momentum(optimizer: str, momentum: float) -> float:
    """The momentum a config means: "momentum"/"nesterov" default to 0.9 when none is given."""
    if optimizer in ("momentum", "nesterov") and momentum == 0.0:
        return 0.9
    return float(momentum)


def make_optimizer(name: str, *, lr=0.1, momentum=0.0, nesterov: bool = False,
                   use_momentum: bool | None = None) -> optax.GradientTransformation:
    """An optax optimizer by name with its learning rate (and momentum) as injected, traced
    hyperparameters, so the learning rate can be set per step and per model.

    ``momentum`` may be a traced value when ``use_momentum`` is given explicitly (else
    ``uses_momentum`` decides from it).
    """
    if name in SGD_FAMILY:
        nesterov = nesterov or name == "nesterov"
        if use_momentum is None:
            use_momentum = uses_momentum(name, momentum, nesterov)
        if not use_momentum:
            return optax.inject_hyperparams(optax.sgd)(learning_rate=lr)
        return optax.inject_hyperparams(optax.sgd, static_args=("nesterov",))(
            learning_rate=lr, momentum=momentum, nesterov=nesterov)
    factory = getattr(optax, name, None)
    if not callable(factory) or name.startswith("_"):
        raise ConfigError(f"unknown optimizer {name!r}; use sgd, momentum, nesterov, adam, "
                          "adamw, rmsprop, adagrad or another optax optimizer name")
    try:
        return optax.inject_hyperparams(factory)(learning_rate=lr)
    except TypeError as e:
        raise ConfigError(f"optimizer {name!r} cannot be built with a learning rate: {e}") from None


def optimizer_for(spec: Spec, momentum=0.0) -> optax.GradientTransformation:
    """The optimizer of programs of ``spec`` (``momentum``: the initial, possibly traced,
    momentum value its state starts with; the update reads it from the state)."""
    return make_optimizer(spec.optimizer, momentum=momentum, nesterov=spec.nesterov,
                          use_momentum=spec.use_momentum)


def schedule_factor(kind: str, step, hp) -> jax.Array:
    """Learning-rate multiplier at global ``step`` (0-based) for schedule ``kind``."""
    t = step.astype(jnp.float32)
    total = jnp.maximum(hp["total_steps"], 1.0)
    if kind == "constant":
        return jnp.ones_like(t)
    if kind == "cosine":
        return 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.minimum(t / total, 1.0)))
    if kind == "step":
        return hp["step_gamma"] ** jnp.floor(t / jnp.maximum(hp["step_every_steps"], 1.0))
    if kind == "warmup_cosine":
        w = hp["warmup_steps"]
        warm = jnp.minimum((t + 1.0) / jnp.maximum(w, 1.0), 1.0)
        frac = jnp.clip((t - w) / jnp.maximum(total - w, 1.0), 0.0, 1.0)
        return jnp.where(t < w, warm, 0.5 * (1.0 + jnp.cos(jnp.pi * frac)))
    raise ConfigError(f"unknown schedule {kind!r}")
