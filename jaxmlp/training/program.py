"""The maths of a training program: one optimizer step, one epoch (a scan over mini-batches
with its divergence guard, metrics, best-params tracking and early stopping) and one chunk of
epochs (a scan over epochs), plus the host-side data order they are fed.

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

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmlp.objective import batch_loss
from jaxmlp.parallel import rows_sharding
from jaxmlp.training.metrics import evaluate, loss_kwargs
from jaxmlp.training import steplog
from jaxmlp.training.optim import learning_rate, training_optimizer, with_learning_rate
from jaxmlp.training.spec import Spec, precision_scope

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the training chunk has been traced (compiled) in this process."""
    return _TRACES["count"]


def _grad_fn(spec: Spec):
    if spec.grad == "manual":
        from jaxmlp.backprop import mlp_value_and_grad
        return mlp_value_and_grad
    return jax.value_and_grad(batch_loss)


def train_step(spec: Spec, state: dict, hp: dict, xb, yb, wb):
    """One optimizer step on a mini-batch. ``wb`` weights examples (0 = padding).

    Unguarded: ``run_chunk`` checks each epoch as a whole for non-finite values and, if it
    finds any, restores the state the epoch started from (cheaper than a check and a select
    of every parameter at every step: ~5 us of a 74 us digits step, `git show
    77c33ef:BENCHMARKS.md`).
    """
    params, opt_state = state["params"], state["opt_state"]
    kw = loss_kwargs(spec, hp)
    if spec.mesh is not None:  # data parallelism: each device takes a slice of the batch
        xb, yb = (jax.lax.with_sharding_constraint(a, rows_sharding(spec.mesh)) for a in (xb, yb))
        if wb is not None:
            wb = jax.lax.with_sharding_constraint(wb, rows_sharding(spec.mesh))
    loss, grads = _grad_fn(spec)(params, xb, yb, weights=wb, **kw)
    lr = learning_rate(spec.schedule, hp)(state["step"])
    opt_state = with_learning_rate(opt_state, lr)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with floats
        updates, new_opt = training_optimizer(spec, hp).update(grads, opt_state, params)
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


class OrdersAhead:
    """Data orders drawn one chunk ahead: ``take(epochs)`` hands back the orders ``draw(epochs)``
    for a chunk (drawn then, unless ``ahead`` drew them already); ``ahead(epochs)`` draws the
    next chunk's while the current one runs on the device (its dispatch returns at once), so
    the device does not wait for the host between chunks. Orders depend only on (seed, epoch):
    results are the same whichever draws them."""

    def __init__(self, draw):
        self._draw, self._next = draw, None

    def take(self, epochs: np.ndarray):
        key = tuple(int(e) for e in epochs)
        if self._next is not None and self._next[0] == key:
            out = self._next[1]
        else:
            out = self._draw(epochs)
        self._next = None
        return out

    def ahead(self, epochs: np.ndarray) -> None:
        self._next = (tuple(int(e) for e in epochs), self._draw(epochs))


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
        if spec.step_log == "step":  # fit only: one model, ``step`` is a scalar
            steplog.record(hp["log_every"], st["step"], loss)
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
            st, m = on_models(end)(start, hp, st, lrs, losses)
            if spec.step_log == "epoch":  # fit only (one model): a report at the epoch's end
                steplog.record_epoch(hp["log_every"], start["step"], st["step"], m["train_loss"])
            return st, m

        def skip(st):
            return st, on_models(lambda s, h: (_metrics_nan(spec),))(st, hp)[0]

        def live(st):
            return jax.lax.cond(~st["stopped"] & ~st["diverged"], do, skip, st)

        # ``act`` is shared by all models, so padding epochs past the run's end are skipped
        # for real even under vmap.
        return jax.lax.cond(act, do if select else live, skip, st)

    with precision_scope(spec):
        return jax.lax.scan(one_epoch, state, (epochs, active, orders))


def best_params(spec: Spec, state: dict):
    """The params a run hands back: the best-validation ones under early stopping."""
    return state["best_params"] if spec.keep_best else state["params"]
