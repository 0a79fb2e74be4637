"""Sweeps: many models trained together in one compiled program.

Every model of a grid gets its own init seed, data-order seed, learning rate, temperature, L2
strength and momentum as traced arrays; the train state is stacked along a leading model axis
and the training chunk of ``jaxmlp.training`` is ``vmap``-ed over it, so a grid that differs only
in these values compiles once. Hidden widths are mixed in one of two layouts
(``jaxmlp.sweeps.plan``): *padded*, every model at the widest width with per-model unit masks
(each padded model is exactly its narrow self: padded weights start at zero and receive
exactly zero gradient; widths further apart than ``max_pad_ratio`` get programs of their own),
or *packed*, one group per width at its true width, all groups stepping inside the same
compiled scans. ``packing="auto"`` picks the one estimated faster. The model axis is sharded
over the local devices.
"""
from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import jax
import numpy as np

from jaxmlp.runs.checkpoint import restore_state
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.nn import weight_counts
from jaxmlp.parallel import to_host
from jaxmlp.sweeps.plan import (PACKINGS, flop_efficiency, plan_programs,  # noqa: F401
                         training_flops_estimate, width_buckets)
from jaxmlp.sweeps.program import (SHORT_RUN_FLOPS, build_program, compile_chunk,  # noqa: F401
                            metrics_executable, model_mesh, shard_models, short_run)
from jaxmlp.sweeps.execute import run_program, streams_for, part_abstract, stream_hparams
from jaxmlp.training import as_splits, batches_per_epoch, best_params, model_sizes

GRID_AXES = ("width", "lr", "temperature", "l2", "momentum", "seed")


@dataclass
class SweepResult:
    """A sweep's outcome.

    Attributes:
        rows: one dict per model: hyperparameters, final/best metrics, epochs_run, diverged,
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


def expand_grid(grid: dict[str, Sequence], seeds: int | Sequence[int] = 1,
                base: TrainConfig | None = None, model: ModelConfig | None = None) -> list[dict]:
    """The Cartesian product of ``grid`` (axes: width, lr, temperature, l2, momentum) and seeds,
    as a list of per-model hyperparameter dicts (axes not in the grid take ``base``'s values)."""
    base = base or TrainConfig()
    model = model or ModelConfig()
    unknown = sorted(set(grid) - set(GRID_AXES))
    if unknown:
        raise ConfigError(f"unknown sweep axis {', '.join(unknown)}; use {', '.join(GRID_AXES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if "seed" in grid:
        seed_list = list(grid["seed"])
    if not seed_list:
        raise ConfigError("a sweep needs at least one seed")
    width_default = model.hidden[-1] if model.hidden else None
    axes = {
        "width": list(grid.get("width", [width_default])),
        "lr": list(grid.get("lr", [base.lr])),
        "temperature": list(grid.get("temperature", [base.temperature])),
        "l2": list(grid.get("l2", [base.l2])),
        "momentum": list(grid.get("momentum", [base.momentum])),
        "seed": seed_list,
    }
    for k, v in axes.items():
        if not v:
            raise ConfigError(f"sweep axis {k} is empty")
    if axes["width"] != [None] and not model.hidden:
        raise ConfigError("a width sweep needs a model with hidden layers (--hidden)")
    rows = []
    for combo in itertools.product(*axes.values()):
        hp = dict(zip(axes, combo))
        # validate each model's values through the config types
        TrainConfig(**{**base.to_dict(), "lr": float(hp["lr"]), "temperature": float(hp["temperature"]),
                       "l2": float(hp["l2"]), "momentum": float(hp["momentum"]), "seed": int(hp["seed"])}
                    | {"step_gamma": base.step_gamma})
        if hp["width"] is not None and (not isinstance(hp["width"], (int, np.integer)) or hp["width"] < 1):
            raise ConfigError(f"widths must be positive integers, got {hp['width']!r}")
        rows.append(hp)
    return rows


def _hidden_for(model: ModelConfig, width) -> tuple[int, ...]:
    return tuple(model.hidden) if width is None else tuple(width for _ in model.hidden)


def unpad_params(params: list, sizes: Sequence[int]) -> list:
    """The narrow model inside a padded one."""
    return [{"W": layer["W"][:sizes[l], :sizes[l + 1]], "b": layer["b"][:sizes[l + 1]]}
            for l, layer in enumerate(params)]


def sweep(data, *, model: ModelConfig | None = None, train: TrainConfig | None = None,
          grid: dict[str, Sequence] | None = None, seeds: int | Sequence[int] = 1,
          max_pad_ratio: float = 8.0, packing: str = "auto", n_devices: int | None = None,
          data_devices: int = 1, fast_compile: bool | None = None, progress=None,
          on_chunk=None, resume: dict | None = None) -> SweepResult:
    """Train every model of a grid, as few compiled programs as the widths allow.

    Args:
        data: ``jaxmlp.data.Splits`` or arrays (see ``jaxmlp.training.as_splits``).
        model: base model; ``grid["width"]`` replaces the size of every hidden layer.
        train: base training config (epochs, batch size, optimizer, schedule, patience, ...).
        grid: axis -> values for "width", "lr", "temperature", "l2", "momentum" (and "seed").
        seeds: number of seeds (0..seeds-1) or a list; each seed sets init and data order
            exactly as ``jaxmlp.fit`` with ``TrainConfig(seed=...)`` does.
        max_pad_ratio: padded layout: widths whose ratio is at most this share one padded
            program; 1 means one program per width ("group"), ``inf`` one for all ("pad").
        packing: "pad" (the padded layout), "pack" (one program, each width at its own size:
            no FLOPs spent on padding), "auto" (the cheaper of the two, or a packed program
            whose groups each hold neighbouring widths padded to the widest, by estimated work:
            ``jaxmlp.sweeps.plan.choose_packing``), or the packed groups as lists of widths
            (e.g. ``[[16, 32], [64], [128]]``).
        n_devices: shard the model axis over this many devices (default: all).
        data_devices: with > 1, a 2-D ("models", "data") mesh: each model's mini-batches are
            split over this many devices (data parallelism inside every model, for large models),
            the models over ``n_devices / data_devices`` groups (padded layout only).
        fast_compile: compile the training programs for a short run (on CPU without XLA's
            fusion emitters: ~0.4 s less compile, up to ~20% slower steps); ``None`` decides
            per program from its estimated work (``short_run``).
        progress: optional ``callable(epochs_done_in_program, program_index, n_programs)``.
        on_chunk: optional ``callable(snapshot)`` after every compiled chunk, with
            ``snapshot = {"programs": [{"state", "epoch", "chunks", "compile_s", "run_s"}, ...],
            "packing": plan}`` for the programs started so far (host arrays; ``plan`` "pad" or
            the packed groups' widths): what a checkpoint needs.
        resume: a snapshot as ``on_chunk`` gave it (states as lists of leaves): finished programs
            are not run again, the current one continues from its epoch, bit-identically; its
            ``"packing"`` (if any) replaces ``packing``.

    Returns:
        A ``SweepResult`` with one row per model in grid order; ``info["strategy"]`` is
        "single", "pad", "group", "bucket" or "pack", ``info["packing"]`` how it was chosen,
        ``info["flop_efficiency"]`` the useful share of the matmul FLOPs computed.
    """
    model = model or ModelConfig()
    train = train or TrainConfig()
    splits = as_splits(data, train.loss)
    members = expand_grid(grid or {}, seeds, train, model)
    sizes = [tuple(model_sizes(model.replace(hidden=_hidden_for(model, m["width"])),
                               splits.n_features, splits.n_outputs)) for m in members]
    mesh, n_dev = model_mesh(n_devices, data_devices)
    if (resume or {}).get("packing") is not None:  # the plan the snapshot's states were laid out by
        packing = resume["packing"]
    n_train = int(np.asarray(splits.X_train).shape[0])
    plan = plan_programs(members, sizes, packing=packing, max_pad_ratio=max_pad_ratio,
                         n_dev=n_dev, data_devices=data_devices, n_train=n_train,
                         epochs=train.epochs,
                         batches=batches_per_epoch(n_train, train.batch_size, train.drop_last),
                         cached=bool(jax.config.jax_compilation_cache_dir))
    info = {"strategy": plan.strategy, "packing": plan.choice, "n_models": len(members),
            "buckets": [sorted({members[i]["width"] for i in idx}, key=lambda w: (w is None, w))
                        for idx, _ in plan.programs], "programs": []}
    result = SweepResult(rows=[None] * len(members), histories={}, info=info,
                         where=[None] * len(members))
    t_all = time.perf_counter()
    snapshot: dict = {"programs": [], "packing": plan.choice["plan"]}
    saved = (resume or {}).get("programs", [])
    for p_i, (idx, layout) in enumerate(plan.programs):
        prog = build_program(splits, model, train, [members[i] for i in idx],
                             tuple(sizes[i] for i in idx), layout, mesh, data_devices)
        cb = None if progress is None else (lambda e, p=p_i: progress(e, p, len(plan.programs)))
        state, hist, stats, final = _train_program(
            prog, train, fast_compile, saved[p_i] if p_i < len(saved) else None, snapshot,
            on_chunk, cb)
        eff, prog_eff = flop_efficiency(layout, [sizes[i] for i in idx])
        info["programs"].append(dict(_layout_info(layout), widths=info["buckets"][p_i],
                                     n_models=len(idx), flop_efficiency=prog_eff,
                                     devices=mesh.size, **stats))
        _collect(result, p_i, prog, [members[i] for i in idx], idx, state, hist, final,
                 [sizes[i] for i in idx], eff, stats["compile_s"] + stats["run_s"], train.epochs)
    info["snapshot"] = snapshot  # final states: what a sweep checkpoint saves
    info["total_s"] = time.perf_counter() - t_all
    info["compile_s"] = sum(p["compile_s"] for p in info["programs"])
    info["run_s"] = sum(p["run_s"] for p in info["programs"])
    # useful matmul FLOPs of all models (true sizes) over those the programs compute
    info["flop_efficiency"] = (sum(sum(weight_counts(s)) for s in sizes)
                               / sum(lay.computed_weights() for _, lay in plan.programs))
    return result


def _layout_info(layout) -> dict:
    """A program's layout for ``info``: its groups' sizes and models, models per data order."""
    return {"layout": "pack" if layout.packed else "pad", "padded_to": list(layout.sizes[-1][1:-1]),
            "groups": [{"sizes": list(sz), "models": len(t), "models_per_order": k}
                       for sz, t, k in zip(layout.sizes, layout.takes, layout.ks)],
            "models_per_order": list(layout.ks) if layout.packed else layout.ks[0]}


def _train_program(prog, train: TrainConfig, fast_compile, saved: dict | None, snapshot: dict,
                   on_chunk, progress):
    """Compile (in the background), initialise or restore, and run one program; record it in
    ``snapshot`` after every chunk. Returns ``(state, history, stats, final metrics)``: the
    final group states, ``run_program``'s history, timings and settings, and per group the
    final metrics of every model (host arrays)."""
    start = saved["epoch"] if saved else 0
    # Trace the training chunk here, then compile it in a background thread while this
    # one traces, compiles and runs the initialisation (XLA compiles release the GIL; on
    # 2 cores this hides most of the smaller compiles).
    compiling, short = None, False
    streams = streams_for(prog)
    hps = stream_hparams(prog, streams)
    if start < train.epochs:
        short = short_run(prog, train) if fast_compile is None else bool(fast_compile)
        abstract = prog.abstract if streams == 1 else part_abstract(prog.abstract, streams)
        compiling = compile_chunk(prog, abstract, hps[0], executor=_COMPILER, short_run=short)
    # queued behind the chunk: compiles while the chunk runs
    metrics_exe = _COMPILER.submit(metrics_executable, prog.spec, prog.abstract, prog.hp, prog.data)
    state = prog.init()
    chunks, prior_s = [], (0.0, 0.0)
    if saved:  # resume: the saved state of this program, its epoch and metrics
        state = shard_models(restore_state(to_host(state), saved["state"]), prog.mesh)
        chunks = saved["chunks"]
        prior_s = (saved["compile_s"], saved["run_s"])
    entry = {"epoch": start, "chunks": chunks, "compile_s": prior_s[0], "run_s": prior_s[1]}
    snapshot["programs"].append(entry)
    t_prog = time.perf_counter()

    def chunk_done(epoch, st, chs):
        entry.update(epoch=epoch, chunks=chs, state=to_host(st),
                     run_s=prior_s[1] + time.perf_counter() - t_prog)
        if on_chunk is not None:
            on_chunk(snapshot)
    state, hist, compile_s, run_s = run_program(prog, state, hps, train.epochs, progress,
                                                start_epoch=start, chunks=chunks,
                                                on_chunk=chunk_done, compiling=compiling)
    compile_s, run_s = compile_s + prior_s[0], run_s + prior_s[1]
    entry.update(state=to_host(state), compile_s=compile_s, run_s=run_s, epoch=train.epochs)
    final = to_host(metrics_exe.result()(tuple(best_params(prog.spec, g) for g in state),
                                         prog.hp, prog.data))
    stats = {"short_run": short, "streams": streams, "compile_s": compile_s, "run_s": run_s}
    return state, hist, stats, final


_STATE_KEYS = ("epoch", "stopped", "diverged", "diverged_step", "best_loss", "best_epoch")


def _collect(result: SweepResult, p_i: int, prog, members: list[dict], idx: list[int], state,
             hist: dict, final: tuple, member_sizes: list, eff: list, wall_s: float,
             epochs: int) -> None:
    """Write one program's models into ``result``: rows, histories (grid order), ``where``."""
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
        i, m = idx[local], members[local]
        for k, v in hist.items():
            histories[k][i, :v.shape[1]] = np.where(ran[pos], v[pos], np.nan)
        row = {"model": i, **{a: m[a] for a in GRID_AXES}}
        row.update({k: float(v[j]) for k, v in final[g].items()})
        hv = histories.get("val_loss", histories["train_loss"])[i]
        row["best_val_loss"] = float(np.nanmin(hv)) if np.isfinite(hv).any() else float("nan")
        st = flags[g]
        row.update(best_epoch=int(st["best_epoch"][j]) + 1, epochs_run=int(st["epoch"][j]),
                   stopped_early=bool(st["stopped"][j]), diverged=bool(st["diverged"][j]),
                   diverged_step=int(st["diverged_step"][j]), program=p_i, wall_s=wall_s,
                   flop_efficiency=eff[local])
        result.rows[i] = row
        result.where[i] = (p_i, (g, j), member_sizes[local])


_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmlp-compile")
