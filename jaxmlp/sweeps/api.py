"""Sweeps: many models trained together in one compiled program per shape.

Every model of a grid gets its own init seed, data-order seed, learning rate, temperature, L2
strength and momentum as traced arrays (the axes: ``jaxmlp.sweeps.axes``); the train state is
stacked along a leading model axis and the training chunk of ``jaxmlp.training`` is
``vmap``-ed over it, so a grid that differs only in these values compiles once. Hidden widths
are mixed in one of two layouts (``jaxmlp.sweeps.plan``): *padded*, every model at the widest
width with per-model unit masks (each padded model is exactly its narrow self: padded weights
start at zero and receive exactly zero gradient; widths further apart than ``max_pad_ratio``
get programs of their own), or *packed*, one group per width at its true width, all groups
stepping inside the same compiled scans. ``packing="auto"`` picks the one estimated faster.
Depths train in programs of their own. The model axis is sharded over the local devices.

This module is the entry point: ``sweep`` in named steps (plan, then per program build,
train and collect), and ``SweepResult``.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.nn import weight_counts
from jaxmlp.parallel import to_host
from jaxmlp.sweeps.axes import expand_grid, member_sizes, row_values
from jaxmlp.sweeps.execute import (part_abstract, restore_program_state, run_program,
                                   stream_hparams, streams_for)
from jaxmlp.sweeps.plan import flop_efficiency, plan_programs
from jaxmlp.sweeps.program import (build_program, compile_chunk, metrics_executable, model_mesh,
                                   shard_models, short_run)
from jaxmlp.training import as_splits, batches_per_epoch, best_params, resolve_loss
from jaxmlp.training.inputs import check_training_memory


@dataclass
class SweepResult:
    """A sweep's outcome.

    Attributes:
        rows: one dict per model: "model" (its index), every axis of ``GRID_AXES`` (width and
            depth as trained: ``jaxmlp.sweeps.axes.row_values``), final/best metrics, epochs_run, diverged,
            wall_s (the wall time of the program the model was trained in), program index,
            flop_efficiency (matmul FLOPs at its true width / FLOPs computed for it).
        histories: metric name -> (n_models, epochs) array, NaN where a model did not run.
        info: strategy, packing choice, buckets, compile and run seconds, devices, FLOP
            efficiency, per-program details.
    """
    rows: list[dict]
    histories: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)
    programs: list = field(default_factory=list, repr=False)   # (spec, final group states)
    where: list = field(default_factory=list, repr=False)  # per model: (program, (group, slot), sizes)

    def column(self, key: str) -> np.ndarray:
        return np.asarray([r[key] for r in self.rows])

    def params(self, i: int, *, padded: bool = False) -> list:
        """Trained params of model ``i`` (best under early stopping), unpadded unless asked
        (a packed model is never padded)."""
        prog, (group, slot), sizes = self.where[i]
        spec, state = self.programs[prog]
        p = jax.tree.map(lambda a: a[slot], to_host(best_params(spec, state[group])))
        return p if padded else unpad_params(p, sizes)


def unpad_params(params: list, sizes: Sequence[int]) -> list:
    """The narrow model inside a padded one."""
    return [{"W": layer["W"][:sizes[l], :sizes[l + 1]], "b": layer["b"][:sizes[l + 1]]}
            for l, layer in enumerate(params)]


def sweep(data, *, model: ModelConfig | None = None, train: TrainConfig | None = None,
          grid: dict[str, Sequence] | None = None, seeds: int | Sequence[int] = 1,
          max_pad_ratio: float = 8.0, packing="auto", n_devices: int | None = None,
          data_devices: int = 1, fast_compile: bool | None = None, progress=None,
          on_chunk=None, resume: dict | None = None) -> SweepResult:
    """Train every model of a grid, in as few compiled programs as the shapes allow.

    Args:
        data: ``jaxmlp.data.Splits`` or arrays (see ``jaxmlp.training.as_splits``).
        model: base model; the grid's width and depth replace its hidden sizes
            (``jaxmlp.sweeps.axes.hidden_for``).
        train: base training config (epochs, batch size, optimizer, schedule, patience, ...).
        grid: axis -> values, axes ``GRID_AXES`` (width, depth, lr, temperature, l2, momentum,
            seed; ``jaxmlp.sweeps.axes``).
        seeds: number of seeds (0..seeds-1) or a list (unless the grid has "seed"); each seed
            sets init and data order exactly as ``jaxmlp.fit`` with ``TrainConfig(seed=...)``.
        max_pad_ratio: padded layout: widths whose ratio is at most this share one padded
            program; 1 means one program per width ("group"), ``inf`` one for all ("pad").
        packing: "pad", "pack" (one program per depth, each width at its own size), "auto"
            (by estimated work: ``jaxmlp.sweeps.plan.choose_packing``), the packed groups as
            lists of widths (e.g. ``[[16, 32], [64], [128]]``), or ``str(depth)`` -> one of these.
        n_devices: shard the model axis over this many devices (default: all).
        data_devices: with > 1, a 2-D ("models", "data") mesh: each model's batches split over
            this many devices, the models over ``n_devices / data_devices`` (padded layout only).
        fast_compile: short-run compiles (faster, slower steps); None: by work (``short_run``).
        progress: ``(epochs_done_in_program, program_index, n_programs)`` after every chunk;
            its ``models(live=, stopped=, diverged=)`` too, if it has one.
        on_chunk: optional ``callable(snapshot)`` after every chunk, ``snapshot = {"programs":
            [{"state", "epoch", "chunks", "rows", "compile_s", "run_s"}, ...], "packing": plan}`` (host
            arrays; the running program's "state" left out when ``on_chunk.wants_state(snapshot)``
            is False: no checkpoint due, no copy of every model to the host).
        resume: a snapshot as ``on_chunk`` gave it, each program's ``"state"`` as given or as
            the list of its leaves: finished programs are not run again, the current one
            continues from its epoch, bit-identically; its ``"packing"`` replaces ``packing``.

    Returns:
        A ``SweepResult`` with one row per model in grid order; ``info["strategy"]`` is
        "single", "pad", "group", "bucket", "pack" or (several depths) "depth",
        ``info["packing"]`` how it was chosen, ``info["flop_efficiency"]`` the useful share of
        the matmul FLOPs computed.
    """
    model, train = model or ModelConfig(), train or TrainConfig()
    splits = as_splits(data, train.loss)
    members = expand_grid(grid or {}, seeds, train, model)
    check_sweep(splits, model, train, members)
    sizes = [member_sizes(model, m, splits.n_features, splits.n_outputs) for m in members]
    mesh, n_dev = model_mesh(n_devices, data_devices)
    if (resume or {}).get("packing") is not None:  # the plan the snapshot's states were laid out by
        packing = resume["packing"]
    plan = _plan(splits, train, members, sizes, packing, max_pad_ratio, n_dev, data_devices)
    ctx = _Context(splits, model, train, members, sizes, mesh, data_devices, fast_compile,
                   progress, on_chunk, len(plan.programs),
                   {"programs": [], "packing": plan.choice["plan"]})
    result = _new_result(plan, [row_values(model, m)["width"] for m in members])
    saved = (resume or {}).get("programs", [])
    t_all = time.perf_counter()
    for p_i, (idx, layout) in enumerate(plan.programs):
        _sweep_program(ctx, result, p_i, idx, layout, saved[p_i] if p_i < len(saved) else None)
    _finish_info(result.info, ctx.snapshot, sizes, plan, time.perf_counter() - t_all)
    return result


def check_sweep(splits, model: ModelConfig, train: TrainConfig, members: list[dict]) -> str:
    """What can only be checked with the data in hand, before anything is compiled: the loss
    for the data's task and every model's temperature (``resolve_loss``), and the memory the
    models' params and gradients (float32) and the data need at least. Returns the loss."""
    loss = resolve_loss(train.loss, splits.task, [m["temperature"] for m in members])
    n_params = sum(sum(weight_counts(sz)) + sum(sz[1:])  # weights and biases
                   for sz in (member_sizes(model, m, splits.n_features, splits.n_outputs)
                              for m in members))
    check_training_memory(2 * 4 * n_params, splits, f"a sweep of {len(members)} models")
    return loss


class _Context(NamedTuple):
    """What every program of one sweep shares."""
    splits: Any
    model: ModelConfig
    train: TrainConfig
    members: list
    sizes: list
    mesh: Any
    data_devices: int
    fast_compile: bool | None
    progress: Callable | None
    on_chunk: Callable | None
    n_programs: int
    snapshot: dict      # the programs started so far: what ``on_chunk`` and a checkpoint get


def _plan(splits, train: TrainConfig, members: list, sizes: list, packing, max_pad_ratio: float,
          n_dev: int, data_devices: int):
    """The sweep's programs (``plan_programs``) for these data and epochs."""
    n_train = int(np.asarray(splits.X_train).shape[0])
    return plan_programs(members, sizes, packing=packing, max_pad_ratio=max_pad_ratio,
                         n_dev=n_dev, data_devices=data_devices, n_train=n_train,
                         epochs=train.epochs,
                         batches=batches_per_epoch(n_train, train.batch_size, train.drop_last),
                         cached=bool(jax.config.jax_compilation_cache_dir))


def _new_result(plan, widths: list) -> SweepResult:
    """An empty result for the plan's models; ``info["buckets"]``: each program's widths."""
    info = {"strategy": plan.strategy, "packing": plan.choice, "n_models": len(widths),
            "buckets": [sorted({widths[i] for i in idx}, key=lambda w: (w is None, w))
                        for idx, _ in plan.programs], "programs": []}
    return SweepResult(rows=[None] * len(widths), histories={}, info=info,
                       where=[None] * len(widths))


def _program_progress(progress, p_i: int, n_programs: int):
    """``run_program``'s per-chunk callback for program ``p_i``: ``progress(epochs, p_i,
    n_programs)``, and ``progress.models(live=, stopped=, diverged=)`` when it has one."""
    def cb(epoch: int, counts: dict) -> None:
        progress(epoch, p_i, n_programs)
        if hasattr(progress, "models"):
            progress.models(**counts)
    return cb


def _sweep_program(ctx: _Context, result: SweepResult, p_i: int, idx: list, layout,
                   saved: dict | None) -> None:
    """Build, train and collect program ``p_i`` (members ``idx`` laid out as ``layout``),
    from ``saved`` (its part of a resumed snapshot) if given."""
    members, sizes = [ctx.members[i] for i in idx], [ctx.sizes[i] for i in idx]
    prog = build_program(ctx.splits, ctx.model, ctx.train, members, tuple(sizes), layout,
                         ctx.mesh, ctx.data_devices)
    cb = None if ctx.progress is None else _program_progress(ctx.progress, p_i, ctx.n_programs)
    rows = [idx[layout.takes[g][j]] for g, j in layout.slots()]  # grid row of each history row
    state, hist, stats, final = _train_program(prog, ctx, saved, cb, rows)
    eff, prog_eff = flop_efficiency(layout, sizes)
    result.info["programs"].append(dict(
        _layout_info(layout), widths=result.info["buckets"][p_i], n_models=len(idx),
        flop_efficiency=prog_eff, devices=ctx.mesh.size, **stats))
    _collect(result, ctx, p_i, prog, idx, state, hist, final, eff,
             stats["compile_s"] + stats["run_s"])


def _finish_info(info: dict, snapshot: dict, sizes: list, plan, total_s: float) -> None:
    """The sweep's totals: final states (what a sweep checkpoint saves), seconds, and the
    useful matmul FLOPs of all models (true sizes) over those the programs compute."""
    info["snapshot"] = snapshot
    info["total_s"] = total_s
    info["compile_s"] = sum(p["compile_s"] for p in info["programs"])
    info["run_s"] = sum(p["run_s"] for p in info["programs"])
    info["flop_efficiency"] = (sum(sum(weight_counts(s)) for s in sizes)
                               / sum(lay.computed_weights() for _, lay in plan.programs))


def _layout_info(layout) -> dict:
    """A program's layout for ``info``: its groups' sizes and models, models per data order."""
    return {"layout": "pack" if layout.packed else "pad", "padded_to": list(layout.sizes[-1][1:-1]),
            "groups": [{"sizes": list(sz), "models": len(t), "models_per_order": k}
                       for sz, t, k in zip(layout.sizes, layout.takes, layout.ks)],
            "models_per_order": list(layout.ks) if layout.packed else layout.ks[0]}


def _train_program(prog, ctx: _Context, saved: dict | None, progress, rows: list):
    """Compile (in the background), initialise or restore, and run one program; record it in
    ``ctx.snapshot`` after every chunk (with ``rows``: the grid row of each row of the metric
    chunks, repeats that pad the devices included). Returns ``(state, history, stats, final metrics)``: the
    final group states, ``run_program``'s history, timings and settings, and per group the
    final metrics of every model (host arrays)."""
    start = int(saved["epoch"]) if saved else 0   # int: run_program counts it up
    streams = streams_for(prog)
    hps = stream_hparams(prog, streams)
    short, compiling = _start_compile(prog, ctx, hps[0], streams, start)
    # queued behind the chunk: compiles while the chunk runs
    metrics_exe = _COMPILER.submit(metrics_executable, prog.spec, prog.abstract, prog.hp, prog.data)
    state, entry = _first_state(prog, saved)
    entry["rows"] = rows
    ctx.snapshot["programs"].append(entry)
    prior_s, t_prog = (entry["compile_s"], entry["run_s"]), time.perf_counter()

    def chunk_done(epoch, whole, chs):
        entry.update(epoch=epoch, chunks=chs, run_s=prior_s[1] + time.perf_counter() - t_prog)
        if ctx.on_chunk is None:
            return
        # every model's state to the host only when the callback needs it (a checkpoint is due)
        wants = getattr(ctx.on_chunk, "wants_state", None)
        if wants is None or wants(ctx.snapshot):
            entry["state"] = to_host(whole())
        else:
            entry.pop("state", None)  # never an earlier chunk's state under this epoch
        ctx.on_chunk(ctx.snapshot)
    state, hist, compile_s, run_s = run_program(prog, state, hps, ctx.train.epochs, progress,
                                                start_epoch=start, chunks=entry["chunks"],
                                                on_chunk=chunk_done, compiling=compiling)
    compile_s, run_s = compile_s + prior_s[0], run_s + prior_s[1]
    entry.update(state=to_host(state), compile_s=compile_s, run_s=run_s, epoch=ctx.train.epochs)
    final = to_host(metrics_exe.result()(tuple(best_params(prog.spec, g) for g in state),
                                         prog.hp, prog.data))
    stats = {"short_run": short, "streams": streams, "compile_s": compile_s, "run_s": run_s}
    # a finished program's state lives on the host (its snapshot copy), not on the devices
    return entry["state"], hist, stats, final


def _start_compile(prog, ctx: _Context, hp, streams: int, start: int):
    """Trace the training chunk here and compile it in a background thread (while this one
    traces, compiles and runs the initialisation: XLA compiles release the GIL; on 2 cores
    this hides most of the smaller compiles). Returns ``(short_run, future or None)``: None
    when the program has no epochs left."""
    if start >= ctx.train.epochs:
        return False, None
    short = short_run(prog, ctx.train) if ctx.fast_compile is None else bool(ctx.fast_compile)
    abstract = prog.abstract if streams == 1 else part_abstract(prog.abstract, streams)
    return short, compile_chunk(prog, abstract, hp, executor=_COMPILER, short_run=short)


def _first_state(prog, saved: dict | None):
    """The program's state to train from and its snapshot entry: initialised, or (resumed)
    ``saved``'s state, epoch, metric chunks and seconds so far."""
    if not saved:
        return prog.init(), {"epoch": 0, "chunks": [], "compile_s": 0.0, "run_s": 0.0}
    state = shard_models(restore_program_state(prog.abstract, saved["state"]), prog.mesh)
    return state, {"epoch": int(saved["epoch"]), "chunks": list(saved["chunks"]),
                   "compile_s": saved["compile_s"], "run_s": saved["run_s"]}


_STATE_KEYS = ("epoch", "stopped", "diverged", "diverged_step", "best_loss", "best_epoch")


def _collect(result: SweepResult, ctx: _Context, p_i: int, prog, idx: list[int], state,
             hist: dict, final: tuple, eff: list, wall_s: float) -> None:
    """Write one program's models (sweep members ``idx``) into ``result``: rows, histories
    (grid order), ``where``."""
    epochs = ctx.train.epochs
    result.programs.append((prog.spec, state))
    flags = to_host([{k: g[k] for k in _STATE_KEYS} for g in state])
    ran = hist.pop("ran")
    histories = result.histories
    for k in hist:
        histories.setdefault(k, np.full((len(result.rows), epochs), np.nan))
    done = set()
    for pos, (g, j) in enumerate(prog.layout.slots()):
        local = prog.layout.takes[g][j]
        if local in done:  # a repeat that pads the devices
            continue
        done.add(local)
        i = idx[local]
        for k, v in hist.items():
            histories[k][i, :v.shape[1]] = np.where(ran[pos], v[pos], np.nan)
        row = {"model": i, **row_values(ctx.model, ctx.members[i])}
        row.update({k: float(v[j]) for k, v in final[g].items()})
        hv = histories.get("val_loss", histories["train_loss"])[i]
        row["best_val_loss"] = float(np.nanmin(hv)) if np.isfinite(hv).any() else float("nan")
        st = flags[g]
        row.update(best_epoch=int(st["best_epoch"][j]) + 1, epochs_run=int(st["epoch"][j]),
                   stopped_early=bool(st["stopped"][j]), diverged=bool(st["diverged"][j]),
                   diverged_step=int(st["diverged_step"][j]), program=p_i, wall_s=wall_s,
                   flop_efficiency=eff[local])
        result.rows[i] = row
        result.where[i] = (p_i, (g, j), ctx.sizes[i])


_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmlp-compile")
