"""The public training entry points: ``fit`` (set up a run with ``prepare``, drive its compiled
chunks with ``train_loop``, summarise with ``summarize``) and ``predict``.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import losses as L
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError, DivergenceError
from jaxmlp.nn import elementwise_counts, forward, training_flops_estimate, weight_counts
from jaxmlp.parallel import mesh_for, peer_watchdog, replicated, to_host
from jaxmlp.training import aot_cache, steplog
from jaxmlp.training.compile import (_COMPILER, chunk_executable, compiler_options,
                                     compiles_quick, fast_jit, signature, split_metrics_jit)
from jaxmlp.training.init import (init_key, init_model, init_state, layer_lr_multipliers,
                                  model_sizes)
from jaxmlp.training.inputs import as_splits, check_training_memory, n_rows, tree_nbytes
from jaxmlp.training.memo import memo
from jaxmlp.training.optim import effective_momentum
from jaxmlp.training.placement import device_data, host_input
from jaxmlp.training.program import OrdersAhead, best_params, chunk_orders
from jaxmlp.training.spec import Spec, make_hparams, make_spec

# A run's final metrics (a forward pass over every split) come out of its training chunk when
# they cost at most this many multiply-adds: one program less to compile (~0.2 s on the digits
# run), for a pass that takes well under a millisecond. Larger sets evaluate in a program of
# their own after the loop, so that the loop's time is training only (W2's 200,000-row pass
# is ~1 s; W4's 125,000 rows ~3 ms of a 90 ms run).
FINAL_IN_CHUNK_MACS = 2e7


@memo
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
    short_run: bool = False   # the chunk is compiled for a short run (``compiles_quick``)
    log_auto: bool = False    # step reports: steps between them re-timed after every chunk


def _compiles_quick(splits, sizes, spec: Spec, epochs: int, fast_compile) -> bool:
    """``fast_compile``, or if None ``compiles_quick`` of the run: its shapes and epochs only,
    never the cache's contents."""
    if fast_compile is not None:
        return bool(fast_compile)
    steps = spec.n_batches * epochs
    n_eval = n_rows(splits.X_val) + n_rows(splits.X_test)
    return compiles_quick(elementwise_counts(sizes, spec.n_train, n_eval, epochs, steps))


def prepare(splits, model: ModelConfig, train: TrainConfig, *, params=None, mesh=None,
            fast_compile: bool | None = None, log_every: int | str | None = None) -> Run:
    """Validate and set up a run: the initialisation is compiled and run here, the training
    chunk is compiled meanwhile in a background thread (``Run.compiling``).

    ``mesh``: a ``jaxmlp.parallel.mesh_for(n)`` mesh for data-parallel training.
    ``fast_compile``: compile the chunk for a short run (``CPU_ONCE_OPTIONS``); None: when
    ``compiles_quick`` says so (the run's shapes and epochs decide, so a resumed run and its
    uninterrupted twin compile alike).
    ``log_every``: steps between in-chunk loss reports (``steplog``), "auto" for about
    ``steplog.REPORTS_PER_S`` a second, "long" for "auto" on runs estimated to train at least
    ``steplog.LONG_RUN_S`` at steps of at least ``steplog.STEP_LEVEL_MIN_S`` (else none),
    None for none (one device only).
    """
    task = splits.task
    n_out = splits.n_outputs
    if task == "classification" and n_out < 2:
        raise ConfigError("classification needs at least 2 classes")
    sizes = model_sizes(model, splits.n_features, n_out)
    rows = sum(n_rows(a) for a in (splits.X_train, splits.X_val, splits.X_test))
    step_flops = training_flops_estimate(sizes, min(train.batch_size, n_rows(splits.X_train)), 1, 1)
    if log_every == "long":  # reports where chunks run long: long runs of big steps
        long = steplog.is_long(training_flops_estimate(sizes, n_rows(splits.X_train), train.epochs))
        big = steplog.level("auto", step_flops) == "step"
        log_every = "auto" if long and big and mesh is None else None
    step_log = log_every is not None
    if step_log and mesh is not None:
        raise ConfigError("step-level progress (log_every) runs on one device only")
    if step_log and log_every != "auto" and not (isinstance(log_every, int)
                                                 and 1 <= log_every < 2**31):
        raise ConfigError(f"log_every must be a number of steps >= 1 or 'auto', got {log_every!r}")
    spec = make_spec(model, train, task=task, n_train=n_rows(splits.X_train),
                     has_val=n_rows(splits.X_val) > 0, has_test=n_rows(splits.X_test) > 0,
                     mesh=mesh, n_features=splits.n_features,
                     final_in_chunk=rows * sum(weight_counts(sizes)) <= FINAL_IN_CHUNK_MACS,
                     step_log=steplog.level(log_every, step_flops) if step_log else "")
    seed = host_input(spec.mesh, np.uint32(train.seed))
    momentum = host_input(spec.mesh, np.float32(effective_momentum(train.optimizer, train.momentum)))
    if params is not None and spec.mesh is not None:
        params = jax.tree.map(lambda a: host_input(spec.mesh, np.asarray(a)), params)
    init, args = _initial_state(spec, model, tuple(sizes)), (params, seed, momentum)
    every = log_every
    if log_every == "auto":  # until a chunk has been timed: an assumed throughput
        every = steplog.auto_every(step_flops / steplog.ASSUMED_FLOPS_PER_S)
    hp = make_hparams(train, spec, layer_lr=layer_lr_multipliers(model, sizes), as_numpy=True,
                      log_every=every or 1)
    hp = jax.tree.map(lambda a: host_input(spec.mesh, a), hp)
    abstract = jax.eval_shape(init, *args)
    check_training_memory(tree_nbytes(abstract) + tree_nbytes(abstract["params"]), splits,
                          f"training a {'-'.join(map(str, sizes))} model")  # state + gradients
    data = device_data(splits, spec)
    short = _compiles_quick(splits, sizes, spec, train.epochs, fast_compile)
    compiling = None
    if spec.mesh is None:  # the chunk compiles in the background while the init is built
        compiling = chunk_executable(spec, abstract, hp, data, spec.chunk_epochs,
                                     executor=_COMPILER, once=short)
    state = aot_cache.load_or_compile(
        "init", (spec, model, tuple(sizes), signature(args), compiler_options(once=True)),
        lambda: init.lower(*args))(*args)
    return Run(spec, hp, data, state, train.seed, compiling, short, log_every == "auto")


def train_loop(run: Run, epochs: int, *, callback=None, watchdog=None, on_step=None,
               on_compiled=None):
    """Drive the compiled chunks from ``run.state``'s epoch up to ``epochs``.

    ``watchdog`` (e.g. ``jaxmlp.parallel.Watchdog``) is kicked around every chunk, so a run
    whose peer process died exits with a clear error instead of waiting forever.
    ``on_step(step, loss)`` receives the in-chunk reports of a step-logging run (``prepare``'s
    ``log_every``; called from XLA's thread), ``on_compiled(compile_s, source)`` the training
    chunk's compile seconds and where it came from (``Chunk.source``) once it is ready.

    Returns ``(state, history, timing)``: the final train state, per-epoch metric lists and
    ``{"compile_s", "train_s", "epochs_run"}`` (plus ``"final_metrics"`` of the returned
    params when a chunk ran).
    """
    spec, hp, data, state = run.spec, run.hp, run.data, run.state
    C = spec.chunk_epochs
    exe, compile_s, source = (run.compiling.result() if run.compiling is not None else
                              chunk_executable(spec, state, hp, data, C, once=run.short_run))
    if on_compiled is not None:
        on_compiled(compile_s, source)
    history: dict[str, list] = {}
    start = epoch = int(state["epoch"])
    orders = OrdersAhead(lambda ep: host_input(spec.mesh, chunk_orders(spec, run.seed, ep, epochs)))
    listen = (steplog.listening(on_step or (lambda step, loss: None)) if spec.step_log
              else contextlib.nullcontext())
    t0 = time.perf_counter()
    with listen:
        while epoch < epochs and not (bool(state["stopped"]) or bool(state["diverged"])):
            ep = np.arange(epoch, epoch + C, dtype=np.int32)
            if watchdog is not None:
                watchdog.kick()
            last, t_chunk = epoch + C >= epochs, time.perf_counter()
            args = (state, hp, data, host_input(spec.mesh, ep), host_input(spec.mesh, ep < epochs),
                    orders.take(ep))
            if spec.final_in_chunk:
                state, metrics, final = exe(*args, host_input(spec.mesh, np.bool_(last)))
            else:
                state, metrics = exe(*args)
            if not last:  # while the chunk runs
                orders.ahead(ep + C)
            metrics = to_host(metrics)
            if watchdog is not None:
                watchdog.kick()
            ran = _extend_history(history, metrics, epoch, C)
            if run.log_auto and ran.any():  # re-time the reports from this chunk's steps
                step_s = (time.perf_counter() - t_chunk) / (int(ran.sum()) * spec.n_batches)
                hp = dict(hp, log_every=np.int32(steplog.auto_every(step_s)))
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


def _extend_history(history: dict, metrics: dict, epoch: int, C: int) -> np.ndarray:
    """Append a chunk's metrics (host arrays) for the epochs that ran; returns which ran."""
    ran = metrics.pop("ran")
    history.setdefault("epoch", []).extend((np.arange(epoch, epoch + C)[ran] + 1).tolist())
    for k, v in metrics.items():
        history.setdefault(k, []).extend(v[ran].tolist())
    return ran


def summarize(run: Run, state: dict, history: dict, timing: dict) -> dict:
    """Per-epoch numpy arrays plus ``history["final"]`` scalars for a finished loop."""
    spec = run.spec
    out = {k: np.asarray(v, np.int64 if k == "epoch" else np.float64) for k, v in history.items()}
    params = best_params(spec, state)
    train_s = timing["train_s"]
    final = {"epochs_run": int(state["epoch"]), "stopped_early": bool(state["stopped"]),
             "diverged": bool(state["diverged"]), "diverged_step": int(state["diverged_step"]),
             "best_epoch": int(state["best_epoch"]) + 1, "compile_s": timing["compile_s"],
             "short_run_compile": run.short_run, "train_s": train_s,
             "samples_per_s": (timing["epochs_run"] * spec.n_train / train_s
                               if train_s > 0 else float("nan"))}
    final.update(timing.get("final_metrics") or final_metrics(spec, params, run.data, run.hp))
    out["final"] = final
    return out


def fit(data, *, model: ModelConfig | None = None, train: TrainConfig | None = None,
        params=None, callback: Callable[[dict, dict], None] | None = None,
        raise_on_divergence: bool = False, devices: int | None = None,
        peer_timeout_s: float | None = None, fast_compile: bool | None = None,
        log_every: int | str | None = None,
        on_step: Callable[[int, float], None] | None = None):
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
        fast_compile: compile the chunk quick (XLA:CPU -O0, no fusion emitters): ~0.8 s
            less compile on CPU, steps 1.5-3.4x slower. None: when the run's estimated work
            says so (``compiles_quick``; BENCHMARKS.md, "Compile tiers").
        log_every: report the mini-batch loss every this many optimizer steps from inside
            the compiled chunks (one host callback per report, no per-step sync; the result
            is bit-identical), or "auto" for about 4 reports a second; None: no reports.
            The reports are kept in ``history["steps"]``. A step-logging program is
            compiled per process (not stored in the compile cache). One device only.
        on_step: called as ``on_step(step, loss)`` for each report, from XLA's thread while
            a chunk runs (``log_every`` defaults to "auto" when given).

    Returns:
        ``(params, history)``: params as a pytree of device arrays; history a dict of per-epoch
        numpy arrays (``epoch``, ``train_loss``, ``lr``, ``val_loss``, ``val_accuracy`` /
        ``val_mse``, ``test_loss``, ``test_accuracy`` / ``test_mse``) and ``history["final"]``,
        a dict of scalars (final metrics, epochs_run, stopped_early, diverged, compile and
        train seconds, ``short_run_compile`` (whether the chunk was compiled for a short run:
        ``fast_compile`` or its default), samples/s); with
        ``log_every``, ``history["steps"]``: ``{"step", "loss"}`` arrays of the reports.
    """
    model = model or ModelConfig()
    train = train or TrainConfig()
    mesh = mesh_for(devices) if devices not in (None, 1) else None
    if on_step is not None and log_every is None:
        log_every = "auto"
    run = prepare(as_splits(data, train.loss), model, train, params=params, mesh=mesh,
                  fast_compile=fast_compile, log_every=log_every)
    reports = _Reports(on_step)
    dog = peer_watchdog(peer_timeout_s)
    try:
        state, history, timing = train_loop(run, train.epochs, callback=callback, watchdog=dog,
                                            on_step=reports)
    finally:
        dog.close()
    out = summarize(run, state, history, timing)
    if run.spec.step_log:
        out["steps"] = reports.arrays()
    if out["final"]["diverged"] and raise_on_divergence:
        raise DivergenceError(divergence_message(out["final"], run.spec))
    return best_params(run.spec, state), out


class _Reports:
    """``fit``'s in-chunk reports: kept for ``history["steps"]``, passed on to ``on_step``."""

    def __init__(self, on_step):
        self.rows, self.on_step = [], on_step

    def __call__(self, step: int, loss: float) -> None:
        self.rows.append((step, loss))
        if self.on_step is not None:
            self.on_step(step, loss)

    def arrays(self) -> dict:
        rows = sorted(self.rows)
        return {"step": np.asarray([r[0] for r in rows], np.int64),
                "loss": np.asarray([r[1] for r in rows], np.float64)}


def divergence_message(final: dict, spec: Spec) -> str:
    step = final["diverged_step"]
    epoch = step // spec.n_batches + 1
    return (f"training diverged (non-finite loss) at epoch {epoch}, step {step}; "
            "kept the last finite params; try a lower learning rate")


def final_metrics(spec: Spec, params, data: dict, hp: dict) -> dict:
    """Train/val/test metrics of ``params`` as Python floats (one compiled call)."""
    return {k: float(v) for k, v in split_metrics_jit(spec)(params, hp, data).items()}


def predict(params, X, *, activation: str = "tanh", temperature=1.0, task: str = "classification"):
    """Class probabilities (classification, softmax at ``temperature``) or predictions. (A
    model trained with mse / huber on class labels: the softmax of its outputs ranks the
    classes as the outputs do, but is not a calibrated probability.)"""
    out = forward(params, jnp.asarray(X, jnp.float32), activation=activation)
    return L.softmax(out, temperature) if task == "classification" else out
