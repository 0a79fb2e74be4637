"""The training loop: an Optax step and a whole-run compiled program.

The unit of compilation is a *chunk* of epochs: ``lax.scan`` over epochs, each a ``lax.scan``
over mini-batches, with the data resident on the device, the data order drawn up front on the
host from the run's seed and the epoch number (``data_order``) and passed in as index arrays,
metrics kept on the device, and the train state donated. A run calls the same compiled chunk
``ceil(epochs / chunk)`` times (epochs past the end are skipped), so runs that differ only in
learning rate, temperature, L2 strength, seed or epoch count reuse one program, and the host
syncs once per chunk, never per step.

Everything here is a pure function of ``(state, hyperparams, data)`` so the sweep engine can
``vmap`` it over a model axis.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmlp.training import aot_cache
from jaxmlp import losses as L
from jaxmlp.config import INT32_MAX, ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError, DataError, DivergenceError
from jaxmlp.objective import batch_loss
from jaxmlp.nn import forward, init_mlp, mup_multipliers, scale_layers, weight_counts
from jaxmlp.parallel import (DATA, MODELS, mesh_for, pad_rows, peer_watchdog, put_global, replicated,
                       rows_sharding, to_host)

# Training sets with more values than this (32 MB of float32) are gathered per step instead of
# per epoch: same speed on the 200,000 x 784 set (1.68 vs 1.70 s an epoch at 100,000 rows),
# without copying the whole set every epoch.
GATHER_PER_STEP_ABOVE = 8_000_000

# A run's final metrics (a forward pass over every split) come out of its training chunk when
# they cost at most this many multiply-adds: one program less to compile (~0.2 s on the digits
# run), for a pass that takes well under a millisecond. Larger sets evaluate in a program of
# their own after the loop, so that the loop's time is training only (W2's 200,000-row pass
# is ~1 s; W4's 125,000 rows ~3 ms of a 90 ms run).
FINAL_IN_CHUNK_MACS = 2e7

# Steps one compiled call aims to cover; the chunk is this many steps' worth of epochs.
TARGET_STEPS_PER_CALL = 2048
MAX_CHUNK_EPOCHS = 256

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the training chunk has been traced (compiled) in this process."""
    return _TRACES["count"]


# --------------------------------------------------------------------------- static spec
class Spec(NamedTuple):
    """The static (compile-time) description of a training program. Hashable."""
    activation: str
    loss: str                 # "ce" | "mse"
    optimizer: str
    nesterov: bool
    use_momentum: bool        # sgd with a momentum trace (per-model momentum in sweeps)
    schedule: str
    grad: str                 # "autodiff" | "manual"
    batch_size: int
    n_batches: int
    drop_last: bool
    n_train: int
    has_val: bool
    has_test: bool
    keep_best: bool
    chunk_epochs: int
    compute_dtype: str
    classification: bool
    masked: bool              # hidden-unit masks present (sweeps with padded widths)
    per_layer_lr: bool        # per-layer learning-rate multipliers (muP)
    mesh: Any = None          # data-parallel mesh (axis "data"): batch sharded, state replicated
    use_l2: bool = True       # some model has an L2 penalty (else the term is left out)
    weighted: bool = True     # padded last batch: examples carry weights
    gather_per_step: bool = False  # large training sets: gather each batch, not each epoch
    final_in_chunk: bool = False   # fit: the final metrics come out of the training chunk


def resolve_loss(loss: str, task: str) -> str:
    """"auto" -> "ce" for classification, "mse" for regression."""
    if loss == "auto":
        return "ce" if task == "classification" else "mse"
    if loss == "ce" and task != "classification":
        raise ConfigError("cross-entropy loss needs a classification data set; use --loss mse")
    return loss


def effective_momentum(optimizer: str, momentum: float) -> float:
    """The momentum a config means: "momentum"/"nesterov" default to 0.9 when none is given."""
    if optimizer in ("momentum", "nesterov") and momentum == 0.0:
        return 0.9
    return float(momentum)


def make_optimizer(name: str, *, lr=0.1, momentum=0.0, nesterov: bool = False,
                   use_momentum: bool | None = None) -> optax.GradientTransformation:
    """An optax optimizer by name with its learning rate (and momentum) as injected, traced
    hyperparameters, so the learning rate can be set per step and per model.

    ``momentum`` may be a traced value when ``use_momentum`` is given explicitly.
    """
    if name in ("sgd", "momentum", "nesterov"):
        nesterov = nesterov or name == "nesterov"
        if use_momentum is None:
            use_momentum = name != "sgd" or momentum > 0.0 or nesterov
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


def optimizer_for(spec: Spec) -> optax.GradientTransformation:
    return make_optimizer(spec.optimizer, nesterov=spec.nesterov, use_momentum=spec.use_momentum)


# --------------------------------------------------------------------------- maths of one run
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


def _grad_fn(spec: Spec):
    if spec.grad == "manual":
        from jaxmlp.backprop import mlp_value_and_grad
        return mlp_value_and_grad
    return jax.value_and_grad(batch_loss)


def _compute_dtype(spec: Spec):
    return None if spec.compute_dtype == "float32" else jnp.dtype(spec.compute_dtype)


def _loss_kwargs(spec: Spec, hp) -> dict:
    kw = dict(activation=spec.activation, loss=spec.loss, temperature=hp["temperature"])
    if spec.masked:
        kw["masks"] = hp["masks"]
    if spec.compute_dtype != "float32":
        kw["compute_dtype"] = _compute_dtype(spec)
    return kw


def _add_l2(grads, params, l2):
    """g_W += l2 * W on weights (not biases): the gradient of (l2/2) ||W||^2."""
    return [{"W": g["W"] + l2 * p["W"], "b": g["b"]} for g, p in zip(grads, params)]


def train_step(spec: Spec, state: dict, hp: dict, xb, yb, wb):
    """One optimizer step on a mini-batch. ``wb`` weights examples (0 = padding).

    Unguarded: ``run_chunk`` checks each epoch as a whole for non-finite values and, if it
    finds any, restores the state the epoch started from (cheaper than a check and a select
    of every parameter at every step: ~5 us of a 74 us digits step, BENCHMARKS.md).
    """
    params, opt_state = state["params"], state["opt_state"]
    kw = _loss_kwargs(spec, hp)
    if spec.mesh is not None:  # data parallelism: each device takes a slice of the batch
        xb, yb = (jax.lax.with_sharding_constraint(a, rows_sharding(spec.mesh)) for a in (xb, yb))
        if wb is not None:
            wb = jax.lax.with_sharding_constraint(wb, rows_sharding(spec.mesh))
    loss, grads = _grad_fn(spec)(params, xb, yb, weights=wb, **kw)
    if spec.use_l2:
        grads = _add_l2(grads, params, hp["l2"])
    lr = hp["lr"] * schedule_factor(spec.schedule, state["step"], hp)
    opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with floats
        updates, new_opt = optimizer_for(spec).update(grads, opt_state, params)
    if spec.per_layer_lr:
        updates = [jax.tree.map(lambda u, m=hp["layer_lr"][i]: u * m, upd)
                   for i, upd in enumerate(updates)]
    state = dict(state, params=optax.apply_updates(params, updates), opt_state=new_opt,
                 step=state["step"] + 1)
    return state, loss, lr


def _all_finite(tree) -> jax.Array:
    return jax.tree.reduce(jnp.logical_and,
                           jax.tree.map(lambda a: jnp.all(jnp.isfinite(a)), tree))


def guard_epoch(start: dict, state: dict, losses) -> tuple[dict, jax.Array]:
    """Divergence check of one epoch: ``state`` after it, ``start`` before it, ``losses`` its
    per-step losses. If any loss, parameter or optimizer value is not finite, the epoch is
    undone (the start state comes back, so the last finite params are kept), the run is
    marked diverged and ``diverged_step`` names the first step with a non-finite loss (the
    epoch's last step when only the final update overflowed). Returns ``(state, ok)``."""
    bad = ~jnp.isfinite(losses)
    ok = ~jnp.any(bad) & _all_finite(state["params"]) & _all_finite(state["opt_state"])
    first = jnp.where(jnp.any(bad), jnp.argmax(bad), losses.shape[0] - 1).astype(jnp.int32)
    state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), state, start)
    return dict(state, diverged=~ok,
                diverged_step=jnp.where(ok, start["diverged_step"], start["step"] + first)), ok


def evaluate(spec_or_kw, params, X, y, hp=None) -> dict:
    """Full-batch loss and accuracy (classification) or MSE (regression)."""
    if isinstance(spec_or_kw, Spec):
        kw = _loss_kwargs(spec_or_kw, hp)
    else:
        kw = dict(spec_or_kw)
    loss_name = kw.pop("loss")
    temperature = kw.pop("temperature", 1.0)
    out = forward(params, X, **kw)
    res = {"loss": jnp.mean(L.loss_per_example(loss_name, out, y, temperature))}
    if loss_name == "ce" or jnp.issubdtype(y.dtype, jnp.integer):
        res["accuracy"] = L.accuracy(out, y)
    else:
        res["mse"] = jnp.mean(L.mse_per_example(out, y))
    return res


def data_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the ``n`` training rows used in ``epoch`` of a run with ``seed``.

    Drawn on the host with NumPy (PCG64 seeded by ``(seed, epoch)``): on a CPU an XLA sort of
    100,000 keys costs ~25 ms, NumPy's shuffle ~1 ms. It depends only on (seed, epoch), so an
    interrupted run resumes with exactly the same batches, and a sweep's model trains on
    exactly the batches ``fit`` would give it.
    """
    return np.random.default_rng((int(seed), int(epoch))).permutation(n).astype(np.int32)


def chunk_orders(spec: Spec, seed: int, epochs: np.ndarray, end: int) -> np.ndarray:
    """Index arrays (C, n_batches, B) for a chunk's epochs; epochs >= ``end`` get zeros (they
    are skipped). Positions past ``n_train`` (the padded tail of the last batch) index row 0
    and carry weight 0."""
    total = spec.n_batches * spec.batch_size
    out = np.zeros((len(epochs), total), np.int32)
    for i, e in enumerate(epochs):
        if e < end:
            perm = data_order(seed, e, spec.n_train)
            out[i, :min(total, spec.n_train)] = perm[:total]
    return out.reshape(len(epochs), spec.n_batches, spec.batch_size)


def _batch_weights(spec: Spec) -> jax.Array:
    """(n_batches, B) example weights: 1 for real rows, 0 for the padded tail."""
    total = spec.n_batches * spec.batch_size
    w = (jnp.arange(total) < spec.n_train).astype(jnp.float32)
    return w.reshape(spec.n_batches, spec.batch_size)


def on_models(f):
    """``f(state, hp, *per_model)`` of one model, applied to a train state, or to a packed
    sweep slot: a tuple of groups, each stacked along a leading model axis (``k_g`` models of
    one width), ``f`` vmapped over each group's models (what ``f`` closes over is shared).

    ``f`` returns a tuple; for a packed slot the result is that tuple with each entry the
    tuple of the groups' values (``(states, metrics)``, not one ``(state, metrics)`` per group).
    """
    def lifted(state, hp, *per_model):
        if not isinstance(state, tuple):
            return f(state, hp, *per_model)
        outs = [jax.vmap(f)(*args) for args in zip(state, hp, *per_model)]
        return tuple(zip(*outs))
    return lifted


def run_epoch(spec: Spec, state, hp, data, idx, w):
    """One pass over the training set: scan of ``train_step`` over the batches. Returns
    ``(state, per-step learning rates, per-step losses)``, each step's values of shape
    ``(n_batches,)`` per model (``(n_batches, k_g)`` per group of a packed slot, whose groups
    all step on the same batches inside this one scan: ``on_models``).

    Small training sets are gathered once per epoch into batch order (one copy, then the scan
    slices it: cheapest for many small steps); large ones are gathered per step, which avoids
    copying the whole set every epoch.
    """
    X, y = data["X_train"], data["y_train"]

    def body(st, inp):
        if spec.gather_per_step:
            bi, bw = inp
            xb, yb = X[bi], y[bi]
        else:
            xb, yb, bw = inp
        step = lambda s, h: train_step(spec, s, h, xb, yb, bw if spec.weighted else None)
        st, loss, lr = on_models(step)(st, hp)
        return st, (lr, loss)

    if spec.gather_per_step:
        xs = (idx, w)
    else:
        xs = (jnp.take(X, idx.reshape(-1), axis=0).reshape(*idx.shape, *X.shape[1:]),
              jnp.take(y, idx.reshape(-1), axis=0).reshape(*idx.shape, *y.shape[1:]), w)
    state, (lrs, losses) = jax.lax.scan(body, state, xs)
    return state, lrs, losses


def _metrics_nan(spec: Spec) -> dict:
    nan = jnp.full((), jnp.nan, jnp.float32)
    keys = ["train_loss", "lr"]
    if spec.has_val:
        keys += ["val_loss", "val_accuracy" if spec.classification else "val_mse"]
    if spec.has_test:
        keys += ["test_loss", "test_accuracy" if spec.classification else "test_mse"]
    return dict({k: nan for k in keys}, ran=jnp.zeros((), bool))


def end_epoch(spec: Spec, data: dict, w, start: dict, hp: dict, st: dict, lrs, losses,
              select: bool = False):
    """One model's epoch bookkeeping after its steps: divergence guard, the epoch's metrics,
    best-params tracking and early stopping. ``start``: the state before the epoch, ``st``
    after its steps; ``lrs``/``losses``: (n_batches,) per-step values; ``w``: (n_batches, B)
    example weights. With ``select``, a model already stopped or diverged keeps ``start``
    and reports NaN (a ``cond`` on its flags is the caller's job otherwise).

    Returns ``(state, metrics)``, each metric a scalar.
    """
    st, ok = guard_epoch(start, st, losses)
    train_loss = jnp.sum(losses * jnp.sum(w, axis=1)) / jnp.sum(w)
    m = {"train_loss": jnp.where(ok, train_loss, jnp.nan), "lr": lrs[-1]}
    monitor = m["train_loss"]
    for split, flag in (("val", spec.has_val), ("test", spec.has_test)):
        if flag:
            ev = evaluate(spec, st["params"], data[f"X_{split}"], data[f"y_{split}"], hp)
            m[f"{split}_loss"] = ev["loss"]
            key = "accuracy" if spec.classification else "mse"
            m[f"{split}_{key}"] = ev[key]
    if spec.has_val:
        monitor = m["val_loss"]
    monitor = jnp.where(st["diverged"], jnp.inf, monitor)
    better = monitor < st["best_loss"]
    st = dict(st, epoch=st["epoch"] + 1,
              best_loss=jnp.where(better, monitor, st["best_loss"]),
              best_epoch=jnp.where(better, st["epoch"], st["best_epoch"]),
              bad_epochs=jnp.where(better, 0, st["bad_epochs"] + 1))
    if spec.keep_best:
        st["best_params"] = jax.tree.map(lambda a, b: jnp.where(better, a, b),
                                         st["params"], st["best_params"])
        st["stopped"] = st["bad_epochs"] >= hp["patience"]
    m["ran"] = jnp.ones((), bool)
    if select:
        live = ~start["stopped"] & ~start["diverged"]
        st, m = jax.tree.map(lambda a, b: jnp.where(live, a, b), (st, m),
                             (start, _metrics_nan(spec)))
    return st, m


def run_chunk(spec: Spec, state, hp, data: dict, epochs, active, orders, select: bool = False):
    """Run ``len(epochs)`` epochs (a chunk); epochs with ``active == False`` or after early
    stopping / divergence leave the state untouched and report NaN metrics.

    Args:
        spec: static description.
        state: train state (params, opt_state, step, epoch, best tracking, flags), or a packed
            sweep slot: a tuple of groups of stacked states (``on_models``; needs ``select``).
        hp: traced hyperparameters (lr, temperature, l2, schedule numbers, optional masks),
            shaped like ``state``.
        data: dict of device arrays X_train, y_train and optionally X_val/y_val/X_test/y_test.
        epochs: (C,) int32 epoch numbers (0-based) for this chunk.
        active: (C,) bool, False for padding epochs past the end of the run.
        orders: (C, n_batches, B) int32 row indices of each epoch's batches (``chunk_orders``).
        select: under a sweep's ``vmap``: run every model's epoch and keep the result only
            where the model is still live (what a ``cond`` on a per-model flag becomes under
            ``vmap`` anyway, written out so that ``vmap`` does not also broadcast the shared
            batches to every model).

    Returns:
        (state, metrics) with each metric of shape (C,) (a packed slot: a tuple of the groups'
        metric dicts, each metric (C, k_g)).
    """
    _TRACES["count"] += 1
    packed = isinstance(state, tuple)
    if packed and not select:
        raise ValueError("a packed sweep slot runs with select=True")
    w = _batch_weights(spec)

    def one_epoch(st, inp):
        epoch, act, idx = inp

        def do(start):
            st, lrs, losses = run_epoch(spec, start, hp, data, idx, w)
            if packed:  # each group's per-step values (n_batches, k_g) -> model axis first
                lrs, losses = (tuple(a.T for a in v) for v in (lrs, losses))
            end = lambda s0, h, s, lr, ls: end_epoch(spec, data, w, s0, h, s, lr, ls, select)
            return on_models(end)(start, hp, st, lrs, losses)

        def skip(st):
            return st, on_models(lambda s, h: (_metrics_nan(spec),))(st, hp)[0]

        def live(st):
            return jax.lax.cond(~st["stopped"] & ~st["diverged"], do, skip, st)

        # ``act`` is shared by all models, so padding epochs past the run's end are skipped
        # for real even under vmap.
        return jax.lax.cond(act, do if select else live, skip, st)

    return jax.lax.scan(one_epoch, state, (epochs, active, orders))


@lru_cache(maxsize=None)
def compiled_chunk(spec: Spec, vmapped: int | tuple = 0, short_run: bool = False):
    """The jitted chunk for ``spec`` (the train state is donated; ``short_run`` as ``fast_jit``).
    Without ``vmapped`` and with ``spec.final_in_chunk`` it takes a seventh argument ``last``
    (bool: the run ends with this chunk) and returns ``(state, metrics, final)``: ``final``
    holds the train/val/test metrics of the params the run hands back (``split_metrics``)
    when ``last`` or the run stopped or diverged in this chunk, NaN otherwise, so a run needs
    no separate program for them.

    With ``vmapped = k >= 1`` the state and hyperparameters carry a leading model axis, the
    data is shared (sweeps) and every ``k`` consecutive models share one data order:
    ``orders`` has one row per group. For ``k > 1`` the groups are a second ``vmap`` level
    inside which the mini-batch is not batched, so the models' first-layer products become
    one wide matrix product per group instead of ``k`` small ones (BENCHMARKS.md, W3).

    With ``vmapped = (k_1, ..., k_G)`` the program is packed (``jaxmlp.sweep``): the state and
    hyperparameters are tuples of G groups (e.g. one per width, each at its own shapes), group
    ``g`` holding ``k_g`` models per slot, slot-major; every slot's models of all groups share
    one data order and step together (``on_models``). Metrics come back as one dict of
    ``(n_slots * sum(k), C)`` arrays, slot-major (a slot's group 1 models, then group 2's, ...).
    """
    fn = lambda st, hp, data, ep, act, orders: run_chunk(spec, st, hp, data, ep, act, orders,
                                                         select=bool(vmapped))
    if isinstance(vmapped, tuple):
        return fast_jit(_packed(fn, vmapped), donate_argnums=(0,), short_run=short_run)
    if not vmapped and not spec.final_in_chunk:
        return fast_jit(fn, donate_argnums=(0,), short_run=short_run)
    if not vmapped:  # one model: its final metrics come out of the same program
        def with_final(st, hp, data, ep, act, orders, last):
            st, metrics = fn(st, hp, data, ep, act, orders)
            final = lambda: split_metrics(spec, best_params(spec, st), hp, data)
            nans = lambda: jax.tree.map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype),
                                        jax.eval_shape(final))
            # only in the chunk where the run ends: one pass over every split per run
            return st, metrics, jax.lax.cond(last | st["stopped"] | st["diverged"], final, nans)
        return fast_jit(with_final, donate_argnums=(0,), short_run=short_run)
    two_d = spec.mesh is not None and "models" in spec.mesh.axis_names
    per_model = jax.vmap(fn, in_axes=(0, 0, None, None, None, 0),
                         spmd_axis_name="models" if two_d else None)
    if vmapped == 1:
        return fast_jit(per_model, donate_argnums=(0,), short_run=short_run)
    if two_d:
        raise ValueError("shared data orders are not supported on a 2-D mesh")
    k = int(vmapped)
    shared = jax.vmap(jax.vmap(fn, in_axes=(0, 0, None, None, None, None)),
                      in_axes=(0, 0, None, None, None, 0))

    def grouped(st, hp, data, ep, act, orders):
        split = lambda a: a.reshape(a.shape[0] // k, k, *a.shape[1:])
        merge = lambda a: a.reshape(a.shape[0] * k, *a.shape[2:])
        st, metrics = shared(jax.tree.map(split, st), jax.tree.map(split, hp), data, ep, act,
                             orders)
        return jax.tree.map(merge, st), jax.tree.map(merge, metrics)
    return fast_jit(grouped, donate_argnums=(0,), short_run=short_run)


def _packed(fn, ks: tuple):
    """``fn`` (a chunk of one packed slot) over the slots of a packed program (see
    ``compiled_chunk``): states and hyperparameters per group ``(n_slots * k_g, ...)``."""
    slots = jax.vmap(fn, in_axes=(0, 0, None, None, None, 0))

    def packed(st, hp, data, ep, act, orders):
        split = lambda tree: tuple(jax.tree.map(lambda a: a.reshape(-1, k, *a.shape[1:]), t)
                                   for t, k in zip(tree, ks))
        st, metrics = slots(split(st), split(hp), data, ep, act, orders)
        st = tuple(jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), t) for t in st)
        # per group (n_slots, C, k_g) -> (n_slots, k_g, C), groups side by side per slot
        flat = {key: jnp.concatenate([jnp.swapaxes(m[key], 1, 2) for m in metrics], axis=1)
                for key in metrics[0]}
        return st, {key: v.reshape(-1, v.shape[-1]) for key, v in flat.items()}
    return packed


# --------------------------------------------------------------------------- set-up helpers
def chunk_epochs_for(steps_per_epoch: int, epochs: int, checkpoint_every: int = 0) -> int:
    """Epochs per compiled call: about TARGET_STEPS_PER_CALL steps, capped by the checkpoint
    interval. Independent of the run length, so runs of any epoch count share one program
    (epochs past the end of a run are masked off inside the chunk)."""
    c = max(1, min(MAX_CHUNK_EPOCHS, math.ceil(TARGET_STEPS_PER_CALL / steps_per_epoch)))
    if checkpoint_every:
        c = min(c, checkpoint_every)
    return c


def batches_per_epoch(n_train: int, batch_size: int, drop_last: bool) -> int:
    """Optimizer steps per epoch: a padded (weighted) last batch unless ``drop_last``."""
    B = batch_size if drop_last else min(batch_size, n_train)
    return n_train // B if drop_last else math.ceil(n_train / B)


def make_spec(model: ModelConfig, train: TrainConfig, *, task: str, n_train: int, has_val: bool,
              has_test: bool, chunk_epochs: int | None = None, masked: bool = False,
              use_momentum: bool | None = None, mesh=None, use_l2: bool | None = None,
              n_features: int = 0, final_in_chunk: bool = False) -> Spec:
    """Derive the static program description from the configs and the data sizes.

    With a ``mesh`` (axis "data") the global batch ``batch_size`` is split over its devices, so
    it must be divisible by their number; results equal the one-device run up to the order of
    the gradient sum.
    """
    loss = resolve_loss(train.loss, task)
    B = train.batch_size
    if train.drop_last and n_train < B:
        raise ConfigError(f"batch size {B} exceeds the {n_train} training examples with drop_last")
    B = min(B, n_train) if not train.drop_last else B
    n_batches = batches_per_epoch(n_train, B, train.drop_last)
    if use_momentum is None:
        use_momentum = train.optimizer in ("momentum", "nesterov") or (
            train.optimizer == "sgd" and (train.momentum > 0 or train.nesterov))
    if train.epochs * n_batches > INT32_MAX:
        raise ConfigError(f"{train.epochs} epochs of {n_batches} steps overflow the int32 step "
                          "counter; use fewer epochs or a larger batch size")
    if chunk_epochs is None:
        chunk_epochs = chunk_epochs_for(n_batches, train.epochs, train.checkpoint_every)
    make_optimizer(train.optimizer)  # validate the name before any compile
    if train.grad == "manual" and train.compute_dtype != "float32":
        raise ConfigError("the hand-derived backward (--grad manual) runs in float32 only; "
                          "use --grad autodiff with --compute-dtype bfloat16")
    if mesh is not None:
        n_dev = mesh.shape[DATA]
        if n_dev == 1:
            mesh = None
        elif B % n_dev:
            raise ConfigError(f"batch size {B} must be divisible by the {n_dev} devices it is split over")
    return Spec(activation=model.activation, loss=loss, optimizer=train.optimizer,
                nesterov=train.nesterov, use_momentum=bool(use_momentum), schedule=train.schedule,
                grad=train.grad, batch_size=B, n_batches=n_batches, drop_last=train.drop_last,
                n_train=n_train, has_val=has_val, has_test=has_test, keep_best=train.patience > 0,
                chunk_epochs=chunk_epochs, compute_dtype=train.compute_dtype,
                classification=loss == "ce", masked=masked,
                per_layer_lr=model.parametrization == "mup", mesh=mesh,
                use_l2=train.l2 > 0 if use_l2 is None else use_l2,
                weighted=not train.drop_last and n_train % B != 0,
                gather_per_step=n_train * n_features > GATHER_PER_STEP_ABOVE,
                final_in_chunk=final_in_chunk)


def make_hparams(train: TrainConfig, spec: Spec, masks=None, layer_lr=None,
                 as_numpy: bool = False) -> dict:
    """Traced hyperparameters of one run (float32 scalars; numpy ones with ``as_numpy``)."""
    xp = np if as_numpy else jnp
    f = lambda v: xp.asarray(v, xp.float32)
    total = train.epochs * spec.n_batches
    hp = {"lr": f(train.lr), "temperature": f(train.temperature), "l2": f(train.l2),
          "total_steps": f(total), "warmup_steps": f(train.warmup_epochs * spec.n_batches),
          "step_every_steps": f(train.step_every * spec.n_batches),
          "step_gamma": f(train.step_gamma), "patience": xp.asarray(train.patience, xp.int32)}
    if masks is not None:
        hp["masks"] = masks
    if spec.per_layer_lr:
        hp["layer_lr"] = f(layer_lr)
    return hp


def init_state(spec: Spec, params, *, momentum: float = 0.0) -> dict:
    """A fresh train state around ``params`` (the data order comes from (seed, epoch) on the
    host, so the state holds no RNG key)."""
    opt = make_optimizer(spec.optimizer, momentum=momentum, nesterov=spec.nesterov,
                         use_momentum=spec.use_momentum)
    state = {
        "params": params,
        "opt_state": opt.init(params),
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


def device_data(splits, spec: Spec) -> dict:
    """Move the splits to the device once (labels int32 for CE, targets float32 for MSE).

    Data-parallel runs shard the training rows over the mesh (zero rows pad them to a multiple
    of the device count; the data order never indexes them) and replicate validation/test.
    """
    if spec.mesh is not None:
        return _sharded_data(splits, spec)
    ydt = _label_dtype(splits, spec)
    data = {"X_train": jnp.asarray(splits.X_train, jnp.float32),
            "y_train": jnp.asarray(splits.y_train, ydt)}
    if spec.has_val:
        data["X_val"] = jnp.asarray(splits.X_val, jnp.float32)
        data["y_val"] = jnp.asarray(splits.y_val, ydt)
    if spec.has_test:
        data["X_test"] = jnp.asarray(splits.X_test, jnp.float32)
        data["y_test"] = jnp.asarray(splits.y_test, ydt)
    return data


def _label_dtype(splits, spec: Spec):
    """int32 class indices, or float32 regression / probability targets."""
    labels = spec.classification and np.issubdtype(np.asarray(splits.y_train).dtype, np.integer)
    return np.int32 if labels else np.float32


def _sharded_data(splits, spec: Spec) -> dict:
    ydt = _label_dtype(splits, spec)
    n_dev = spec.mesh.shape[DATA]
    rows, rep = rows_sharding(spec.mesh), replicated(spec.mesh)
    data = {"X_train": put_global(pad_rows(np.asarray(splits.X_train, np.float32), n_dev), rows),
            "y_train": put_global(pad_rows(np.asarray(splits.y_train, ydt), n_dev), rows)}
    for split, flag in (("val", spec.has_val), ("test", spec.has_test)):
        if flag:
            data[f"X_{split}"] = put_global(np.asarray(getattr(splits, f"X_{split}"), np.float32), rep)
            data[f"y_{split}"] = put_global(np.asarray(getattr(splits, f"y_{split}"), ydt), rep)
    return data


def host_input(mesh, x):
    """A host array every process holds identically, as a (replicated) program input."""
    if mesh is None:
        return x
    return put_global(np.asarray(x), replicated(mesh))


def init_key(seed) -> jax.Array:
    """The parameter-initialisation key of a run with ``seed`` (the data order is drawn by
    ``data_order`` from the same seed)."""
    return jax.random.PRNGKey(seed)


def model_sizes(model: ModelConfig, n_features: int, n_outputs: int) -> list[int]:
    return [n_features, *model.hidden, n_outputs]


def init_model(init_key, model: ModelConfig, sizes) -> list:
    """Initial params for ``model`` with layer ``sizes`` (muP rescales the output layer)."""
    params = init_mlp(init_key, sizes, init=model.init, activation=model.activation)
    if model.parametrization == "mup":
        params = scale_layers(params, mup_multipliers(sizes, model.base_width)[0])
    return params


def layer_lr_multipliers(model: ModelConfig, sizes):
    """Per-layer learning-rate multipliers (None under the standard parametrisation)."""
    if model.parametrization != "mup":
        return None
    return mup_multipliers(sizes, model.base_width)[1]


# --------------------------------------------------------------------------- the public fit
@dataclass
class ArraySplits:
    """Minimal splits container for ``fit`` called on raw arrays."""
    X_train: Any
    y_train: Any
    X_val: Any = None
    y_val: Any = None
    X_test: Any = None
    y_test: Any = None
    soft: bool = False  # y are (n, K) probability targets for cross-entropy

    @property
    def task(self) -> str:
        y = np.asarray(self.y_train)
        return "classification" if self.soft or np.issubdtype(y.dtype, np.integer) else "regression"

    @property
    def n_classes(self):
        if self.task != "classification":
            return None
        if self.soft:
            return int(np.asarray(self.y_train).shape[1])
        ys = [np.asarray(a) for a in (self.y_train, self.y_val, self.y_test) if a is not None]
        return int(max(int(a.max()) for a in ys if a.size)) + 1

    @property
    def n_features(self) -> int:
        return int(np.asarray(self.X_train).shape[1])

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else int(np.asarray(self.y_train).shape[1])


def as_splits(data, loss: str = "auto"):
    """Accept a ``jaxmlp.data.Splits``, or ``(X, y)`` / ``(X_tr, y_tr, X_te, y_te)`` /
    ``(X_tr, y_tr, X_val, y_val, X_te, y_te)`` tuples of arrays: integer y = classification,
    float y = regression, except that with ``loss="ce"`` a float (n, K) y holds probability
    targets (one-hot or soft, e.g. a teacher's softened outputs for distillation)."""
    if not isinstance(data, (tuple, list)):
        return data
    from jaxmlp.data import validate_arrays
    arrs = [np.asarray(a) for a in data]
    if len(arrs) not in (2, 4, 6):
        raise ConfigError("data must be Splits or a tuple of 2, 4 or 6 arrays")
    for i in range(1, len(arrs), 2):
        if arrs[i].ndim == 1 and not np.issubdtype(arrs[i].dtype, np.integer):
            arrs[i] = arrs[i][:, None]
    soft = (loss == "ce" and not np.issubdtype(arrs[1].dtype, np.integer) and arrs[1].ndim == 2
            and arrs[1].shape[1] >= 2)
    task = "classification" if np.issubdtype(arrs[1].dtype, np.integer) else "regression"
    n_classes = None
    if task == "classification":
        n_classes = max(int(a.max()) for a in arrs[1::2] if a.size) + 1
    names = {2: ("train",), 4: ("train", "test"), 6: ("train", "val", "test")}[len(arrs)]
    for i in range(0, len(arrs), 2):
        if i > 0 and arrs[i].size == 0:
            continue
        name = names[i // 2]
        arrs[i], arrs[i + 1] = validate_arrays(arrs[i], arrs[i + 1], task, n_classes, name=name,
                                               warn_constant=i == 0, min_classes=2 if i == 0 else 1)
        if arrs[i].shape[1] != arrs[0].shape[1]:
            raise DataError(f"all splits need {arrs[0].shape[1]} features, got {arrs[i].shape[1]}")
        if soft:
            _check_probabilities(arrs[i + 1], arrs[1].shape[1], name)
    if len(arrs) == 4:
        arrs = [arrs[0], arrs[1], None, None, arrs[2], arrs[3]]
    return ArraySplits(*arrs, soft=soft)


def _check_probabilities(y: np.ndarray, k: int, name: str) -> None:
    """Soft targets must be rows of K non-negative probabilities summing to 1."""
    if y.shape[1] != k or k < 2:
        raise DataError(f"{name}: probability targets need the same K >= 2 columns, got {y.shape}")
    if (y < 0).any() or not np.allclose(y.sum(axis=1), 1.0, atol=1e-4):
        raise DataError(f"{name}: probability targets must be non-negative rows summing to 1")


def _size(a) -> int:
    return 0 if a is None else int(np.asarray(a).shape[0])


@lru_cache(maxsize=None)
def _initial_state(spec: Spec, model: ModelConfig, sizes: tuple):
    """Params (unless given) and optimizer state of a run, in one compiled call (replicated
    over the mesh for data-parallel runs)."""
    def make(params, seed, momentum):
        if params is None:
            params = init_model(init_key(seed), model, list(sizes))
        else:  # a copy: the training chunk donates its state, never the caller's arrays
            params = jax.tree.map(jnp.copy, params)
        return init_state(spec, params, momentum=momentum)
    out = None if spec.mesh is None else replicated(spec.mesh)
    return fast_jit(make, out_shardings=out, once=True)


class Run(NamedTuple):
    """Everything a run needs, built once: static spec, traced hparams, device data, state,
    and the seed that sets the data order."""
    spec: Spec
    hp: dict
    data: dict
    state: dict
    seed: int = 0
    compiling: Any = None     # a future of the training chunk's (executable, compile seconds)


def prepare(splits, model: ModelConfig, train: TrainConfig, *, params=None, mesh=None) -> Run:
    """Validate and set up a run: the initialisation is compiled and run here, the training
    chunk is compiled meanwhile in a background thread (``Run.compiling``).

    ``mesh``: a ``jaxmlp.parallel.mesh_for(n)`` mesh for data-parallel training.
    """
    task = splits.task
    n_out = splits.n_outputs
    if task == "classification" and n_out < 2:
        raise ConfigError("classification needs at least 2 classes")
    sizes = model_sizes(model, splits.n_features, n_out)
    rows = sum(_size(a) for a in (splits.X_train, splits.X_val, splits.X_test))
    spec = make_spec(model, train, task=task, n_train=_size(splits.X_train),
                     has_val=_size(splits.X_val) > 0, has_test=_size(splits.X_test) > 0, mesh=mesh,
                     n_features=splits.n_features,
                     final_in_chunk=rows * sum(weight_counts(sizes)) <= FINAL_IN_CHUNK_MACS)
    seed = host_input(spec.mesh, np.uint32(train.seed))
    momentum = host_input(spec.mesh, np.float32(effective_momentum(train.optimizer, train.momentum)))
    if params is not None and spec.mesh is not None:
        params = jax.tree.map(lambda a: host_input(spec.mesh, np.asarray(a)), params)
    init, args = _initial_state(spec, model, tuple(sizes)), (params, seed, momentum)
    hp = make_hparams(train, spec, layer_lr=layer_lr_multipliers(model, sizes), as_numpy=True)
    hp = jax.tree.map(lambda a: host_input(spec.mesh, a), hp)
    data = device_data(splits, spec)
    compiling = None
    if spec.mesh is None:  # the chunk compiles in the background while the init is built
        compiling = get_executable(spec, jax.eval_shape(init, *args), hp, data,
                                   spec.chunk_epochs, executor=_COMPILER)
    state = aot_cache.load_or_compile(
        "init", (spec, model, tuple(sizes), _signature(args), compiler_options(once=True)),
        lambda: init.lower(*args))(*args)
    return Run(spec, hp, data, state, train.seed, compiling)


_EXECUTABLES: dict = {}
# Compiles in the background (XLA releases the GIL): a run's training chunk while its
# initialisation is compiled and run in the calling thread.
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmlp-fit-compile")

# XLA:CPU's LLVM back end at -O1: the training chunk compiles ~40% faster (0.99 -> 0.60 s on the
# digits 64-128-10 run, BENCHMARKS.md) and runs as fast, since its matmuls are library calls.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
# Programs that run once per run on small inputs (parameter initialisation): compile time is
# all that counts. Without XLA:CPU's fusion emitters and at -O0 the threefry random-number
# code of a 64-model sweep's initialisation compiles in 0.25 instead of 0.63 s (BENCHMARKS.md).
CPU_ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
# Training programs whose whole run takes seconds (short sweeps, ``jaxmlp.sweep``): without
# XLA:CPU's fusion emitters a sweep's training chunk compiles ~0.4 s faster (W3: 0.92 -> 0.52 s
# of XLA compile) while its elementwise ops (tanh above all) run 0-20% slower (BENCHMARKS.md).
CPU_SHORT_RUN_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}


def compiler_options(*, once: bool = False, short_run: bool = False) -> dict | None:
    """XLA options of a program: ``CPU_COMPILER_OPTIONS`` on the CPU backend
    (``CPU_ONCE_OPTIONS`` with ``once``, ``CPU_SHORT_RUN_OPTIONS`` with ``short_run``)."""
    if jax.default_backend() != "cpu":
        return None
    return CPU_ONCE_OPTIONS if once else CPU_SHORT_RUN_OPTIONS if short_run else CPU_COMPILER_OPTIONS


def fast_jit(fn, *, once: bool = False, short_run: bool = False, **kwargs):
    """``jax.jit`` with ``compiler_options``: compile time matters as much as run time for
    small models (BENCHMARKS.md)."""
    return jax.jit(fn, compiler_options=compiler_options(once=once, short_run=short_run),
                   **kwargs)


def _signature(tree):
    return (jax.tree.structure(tree),
            tuple((tuple(a.shape), str(a.dtype), str(getattr(a, "sharding", "")))
                  for a in jax.tree.leaves(tree)))


def get_executable(spec: Spec, state, hp, data, C: int, vmapped: int | tuple = 0, mesh=None,
                   executor=None, short_run: bool = False):
    """The ahead-of-time compiled chunk for these shapes (``vmapped``, ``short_run`` as
    ``compiled_chunk``); compiled at most once per process.

    Returns ``(executable, compile_seconds)`` (0.0 when it came from the cache). With an
    ``executor`` (``concurrent.futures``), the chunk is traced and lowered in the calling
    thread and compiled in the executor, and a future of that pair is returned (XLA compiles
    without the GIL, so the caller can trace other programs meanwhile).
    """
    key = (spec, vmapped, short_run, _signature(state), _signature(hp), _signature(data))
    exe = _EXECUTABLES.get(key)
    if exe is not None:
        if executor is None:
            return exe, 0.0
        return executor.submit(lambda: (exe, 0.0))
    t0 = time.perf_counter()
    disk_key = (*key, compiler_options(short_run=short_run))
    exe = aot_cache.load("chunk", disk_key)  # an earlier process's: nothing to trace
    if exe is not None:
        _EXECUTABLES[key] = exe
        done = (exe, time.perf_counter() - t0)
        return done if executor is None else executor.submit(lambda: done)
    mesh = spec.mesh if mesh is None else mesh
    ep = host_input(mesh, np.arange(C, dtype=np.int32))
    act = host_input(mesh, np.ones(C, bool))
    orders = np.zeros((C, spec.n_batches, spec.batch_size), np.int32)
    if vmapped:
        first, k = (state[0], vmapped[0]) if isinstance(vmapped, tuple) else (state, vmapped)
        groups = first["step"].shape[0] // int(k)
        orders = _models_input(mesh, np.zeros((groups, *orders.shape), np.int32))
    else:
        orders = host_input(mesh, orders)
    last = (host_input(mesh, np.bool_(True)),) if spec.final_in_chunk and not vmapped else ()
    lowered = compiled_chunk(spec, vmapped, short_run).lower(state, hp, data, ep, act, orders,
                                                             *last)

    def finish():
        exe = aot_cache.compile_and_store("chunk", disk_key, lowered)
        _EXECUTABLES[key] = exe
        return exe, time.perf_counter() - t0
    return finish() if executor is None else executor.submit(finish)


def _models_input(mesh, x):
    """A host array with a leading model axis, split over the mesh's "models" axis."""
    if mesh is None:
        return x
    return put_global(x, rows_sharding(mesh, MODELS))


def train_loop(run: Run, epochs: int, *, callback=None, watchdog=None):
    """Drive the compiled chunks from ``run.state``'s epoch up to ``epochs``.

    ``watchdog`` (e.g. ``jaxmlp.parallel.Watchdog``) is kicked around every chunk, so a run
    whose peer process died exits with a clear error instead of waiting forever.

    Returns ``(state, history, timing)``: the final train state, per-epoch metric lists and
    ``{"compile_s", "train_s", "epochs_run"}`` (plus ``"final_metrics"`` of the returned
    params when a chunk ran).
    """
    spec, hp, data, state = run.spec, run.hp, run.data, run.state
    C = spec.chunk_epochs
    exe, compile_s = (run.compiling.result() if run.compiling is not None else
                      get_executable(spec, state, hp, data, C))
    history: dict[str, list] = {}
    start = epoch = int(state["epoch"])
    t0 = time.perf_counter()
    while epoch < epochs and not (bool(state["stopped"]) or bool(state["diverged"])):
        ep = np.arange(epoch, epoch + C, dtype=np.int32)
        if watchdog is not None:
            watchdog.kick()
        orders = chunk_orders(spec, run.seed, ep, epochs)
        last = epoch + C >= epochs
        args = (state, hp, data, host_input(spec.mesh, ep), host_input(spec.mesh, ep < epochs),
                host_input(spec.mesh, orders))
        if spec.final_in_chunk:
            state, metrics, final = exe(*args, host_input(spec.mesh, np.bool_(last)))
        else:
            state, metrics = exe(*args)
        metrics = to_host(metrics)
        if watchdog is not None:
            watchdog.kick()
        ran = metrics.pop("ran")
        history.setdefault("epoch", []).extend((np.arange(epoch, epoch + C)[ran] + 1).tolist())
        for k, v in metrics.items():
            history.setdefault(k, []).extend(v[ran].tolist())
        epoch = int(state["epoch"])
        if callback is not None:
            callback(state, history)
        if not ran.any():
            break
    jax.block_until_ready(state["params"])
    timing = {"compile_s": compile_s, "train_s": time.perf_counter() - t0,
              "epochs_run": int(state["epoch"]) - start}
    if spec.final_in_chunk and epoch > start and (last or bool(state["stopped"])
                                                   or bool(state["diverged"])):
        # the last chunk computed the final metrics (else summarize does)
        timing["final_metrics"] = {k: float(v) for k, v in to_host(final).items()}
    return state, history, timing


def summarize(run: Run, state: dict, history: dict, timing: dict) -> dict:
    """Per-epoch numpy arrays plus ``history["final"]`` scalars for a finished loop."""
    spec = run.spec
    out = {k: np.asarray(v, np.int64 if k == "epoch" else np.float64) for k, v in history.items()}
    params = best_params(spec, state)
    train_s = timing["train_s"]
    final = {"epochs_run": int(state["epoch"]), "stopped_early": bool(state["stopped"]),
             "diverged": bool(state["diverged"]), "diverged_step": int(state["diverged_step"]),
             "best_epoch": int(state["best_epoch"]) + 1, "compile_s": timing["compile_s"],
             "train_s": train_s,
             "samples_per_s": (timing["epochs_run"] * spec.n_train / train_s
                               if train_s > 0 else float("nan"))}
    final.update(timing.get("final_metrics") or final_metrics(spec, params, run.data, run.hp))
    out["final"] = final
    return out


def best_params(spec: Spec, state: dict):
    """The params a run hands back: the best-validation ones under early stopping."""
    return state["best_params"] if spec.keep_best else state["params"]


def fit(data, *, model: ModelConfig | None = None, train: TrainConfig | None = None,
        params=None, callback: Callable[[dict, dict], None] | None = None,
        raise_on_divergence: bool = False, devices: int | None = None,
        peer_timeout_s: float | None = None):
    """Train an MLP.

    Args:
        data: ``jaxmlp.data.Splits`` or a tuple of arrays (see ``as_splits``).
        model: model config (hidden widths, activation, init).
        train: training config (optimizer, lr, schedule, batch size, epochs, seed, ...).
        params: optional initial params (default: ``init_mlp`` from the seed's init key).
        callback: called on the host after every compiled chunk as
            ``callback(state, history_so_far)``; raise from it to interrupt.
        raise_on_divergence: raise ``DivergenceError`` instead of returning the last good params.
        devices: data-parallel over this many devices (all processes' devices count); the
            global batch ``train.batch_size`` is split over them. None or 1: one device.
        peer_timeout_s: in multi-process runs, exit with an error when a compiled chunk makes no
            progress for this long (default 60 s when ``jax.process_count() > 1``).

    Returns:
        ``(params, history)``: params as a pytree of device arrays; history a dict of per-epoch
        numpy arrays (``epoch``, ``train_loss``, ``lr``, ``val_loss``, ``val_accuracy`` /
        ``val_mse``, ``test_loss``, ``test_accuracy`` / ``test_mse``) and ``history["final"]``,
        a dict of scalars (final metrics, epochs_run, stopped_early, diverged, compile and
        train seconds, samples/s).
    """
    model = model or ModelConfig()
    train = train or TrainConfig()
    mesh = mesh_for(devices) if devices not in (None, 1) else None
    run = prepare(as_splits(data, train.loss), model, train, params=params, mesh=mesh)
    dog = peer_watchdog(peer_timeout_s)
    try:
        state, history, timing = train_loop(run, train.epochs, callback=callback, watchdog=dog)
    finally:
        dog.close()
    out = summarize(run, state, history, timing)
    if out["final"]["diverged"] and raise_on_divergence:
        raise DivergenceError(divergence_message(out["final"], run.spec))
    return best_params(run.spec, state), out


def divergence_message(final: dict, spec: Spec) -> str:
    step = final["diverged_step"]
    epoch = step // spec.n_batches + 1
    return (f"training diverged (non-finite loss) at epoch {epoch}, step {step}; "
            "kept the last finite params; try a lower learning rate")


def split_metrics(spec: Spec, params, hp: dict, data: dict) -> dict:
    """Loss and accuracy/MSE of ``params`` on every split present in ``data`` (traceable)."""
    out = {}
    for split in ("train", "val", "test"):
        if f"X_{split}" in data:
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if split == "train":  # data-parallel runs pad the training rows
                X, y = X[:spec.n_train], y[:spec.n_train]
            ev = evaluate(spec, params, X, y, hp)
            out.update({f"{split}_{k}": v for k, v in ev.items()})
    return out


@lru_cache(maxsize=None)
def split_metrics_jit(spec: Spec, vmapped: bool = False):
    """``split_metrics`` compiled once per spec (over a model axis when ``vmapped``)."""
    fn = lambda p, hp, data: split_metrics(spec, p, hp, data)
    return fast_jit(jax.vmap(fn, in_axes=(0, 0, None)) if vmapped else fn)


def final_metrics(spec: Spec, params, data: dict, hp: dict) -> dict:
    """Train/val/test metrics of ``params`` as Python floats (one compiled call)."""
    return {k: float(v) for k, v in split_metrics_jit(spec)(params, hp, data).items()}


def predict(params, X, *, activation: str = "tanh", temperature=1.0, task: str = "classification"):
    """Class probabilities (classification, softmax at ``temperature``) or predictions."""
    out = forward(params, jnp.asarray(X, jnp.float32), activation=activation)
    return L.softmax(out, temperature) if task == "classification" else out
