"""The update rule of a run: ``optax.chain`` of the L2 penalty on weights, an Optax optimizer by
name and muP's per-layer learning rates (``training_optimizer``), the momentum a config means,
and the learning-rate schedules.

Hyperparameters that vary per model (learning rate, momentum) are injected as traced values
(``optax.inject_hyperparams``; the schedule sets the injected learning rate every step), L2
strength and per-layer multipliers are traced values the chain closes over, so runs and sweep
members that differ only in them share one compiled program. The chain's state holds exactly
the optimizer's arrays (the other links are stateless).
"""
from __future__ import annotations

import warnings
from functools import lru_cache
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
        opt = optax.inject_hyperparams(factory)(learning_rate=lr)
    except TypeError as e:
        raise ConfigError(f"optimizer {name!r} cannot be built with a learning rate: {e}") from None
    _check_plain_update(name)
    return opt


@lru_cache(maxsize=None)
def _check_plain_update(name: str) -> None:
    """``ConfigError`` unless optax's ``name`` updates from gradients alone, as the training
    step calls it (line-search optimizers such as lbfgs need the loss function, noisy_sgd a
    key); checked by tracing one update of a tiny pytree, before anything is compiled."""
    opt = optax.inject_hyperparams(getattr(optax, name))(learning_rate=0.1)
    params = {"W": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    try:
        with warnings.catch_warnings(), jax.numpy_dtype_promotion("standard"):
            warnings.simplefilter("ignore")  # e.g. noisy_sgd's "specifying a key will be required"
            state = jax.eval_shape(lambda p: opt.update(p, opt.init(p), p)[1], params)
    except Exception as e:  # noqa: BLE001 - any failure means the step cannot use it
        raise ConfigError(f"optimizer {name!r} cannot be used here: its update needs more than "
                          f"the gradients ({type(e).__name__})") from None
    if any(jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
           for leaf in jax.tree.leaves(state)):
        raise ConfigError(f"optimizer {name!r} cannot be used here: its state holds a random key "
                          "(train states are plain arrays, checkpointed and vmapped per model)")


def optimizer_for(spec: Spec, momentum=0.0) -> optax.GradientTransformation:
    """The optimizer of programs of ``spec`` (``momentum``: the initial, possibly traced,
    momentum value its state starts with; the update reads it from the state)."""
    return make_optimizer(spec.optimizer, momentum=momentum, nesterov=spec.nesterov,
                          use_momentum=spec.use_momentum)


def l2_on_weights(l2) -> optax.GradientTransformation:
    """g_W += l2 * W on weights (not biases): the gradient of (l2/2) ||W||^2."""
    return optax.add_decayed_weights(l2, mask=lambda params: [{"W": True, "b": False}
                                                              for _ in params])


def scale_by_layer(multipliers) -> optax.GradientTransformation:
    """Each layer's updates times its multiplier (``multipliers``: one per layer, e.g. muP's
    per-layer learning rates, traced or not)."""
    def update(updates, state, params=None):
        del params
        return [jax.tree.map(lambda u, m=multipliers[i]: u * m, upd)
                for i, upd in enumerate(updates)], state
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# Where the optimizer's own state sits in ``training_optimizer``'s chain state.
OPTIMIZER_LINK = 1


def training_optimizer(spec: Spec, hp: dict | None = None, *,
                       momentum=0.0) -> optax.GradientTransformation:
    """The update rule of programs of ``spec``: ``optax.chain`` of the L2 penalty on weights
    (``spec.use_l2``), the optimizer (``optimizer_for``) and the per-layer learning-rate
    multipliers (``spec.per_layer_lr``); links a spec leaves out are ``optax.identity()``, so
    the optimizer's state is always at ``OPTIMIZER_LINK``. ``hp`` holds the traced L2 strength
    and multipliers; without it (to ``init`` a state, which does not depend on their values)
    they are placeholders."""
    l2 = l2_on_weights(0.0 if hp is None else hp["l2"]) if spec.use_l2 else optax.identity()
    per_layer = (scale_by_layer(None if hp is None else hp["layer_lr"]) if spec.per_layer_lr
                 else optax.identity())
    return optax.chain(l2, optimizer_for(spec, momentum=momentum), per_layer)


def with_learning_rate(opt_state: tuple, lr) -> tuple:
    """``training_optimizer``'s state with the optimizer's injected learning rate set to ``lr``."""
    inner = opt_state[OPTIMIZER_LINK]
    inner = inner._replace(hyperparams={**inner.hyperparams, "learning_rate": lr})
    return (*opt_state[:OPTIMIZER_LINK], inner, *opt_state[OPTIMIZER_LINK + 1:])


def learning_rate(kind: str, hp: dict):
    """The schedule (``step -> learning rate``, an ``optax.Schedule``) of ``hp["lr"]`` under
    schedule ``kind``."""
    return lambda step: hp["lr"] * schedule_factor(kind, step, hp)


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
