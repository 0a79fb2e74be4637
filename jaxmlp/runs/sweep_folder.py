"""A sweep's folder: ``sweep_run`` trains a grid of models (``jaxmlp.sweeps``) into a folder that
records them (results table, per-model histories, figures, checkpoint), and resumes it from that
folder's checkpoint.

Layout::

    config.json          the sweep's setup (``sweep_setup``): base RunConfig, grid, seeds, ...
    sweep_checkpoint.npz every started program's stacked train state (atomic; .prev kept)
    results.csv          one row per model: hyperparameters, final/best metrics, epochs_run, wall_s
    results.json         the same rows plus the sweep info (strategy, programs, timings)
    histories.npz        metric -> (n_models, epochs) arrays (NaN where a model did not run)
    histories.csv        long format: model, epoch, metric columns
    heatmap.png          test metric over two grid axes (mean over seeds, ± std)
    curves.png           mean validation loss per epoch, one curve per group of the first varied axis
    vs_width.png         test metric vs width (mean ± std over the other axes' seeds)
    vs_temperature.png   test metric vs temperature
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from jaxmlp.atomic import atomic_write_bytes, atomic_write_text
from jaxmlp.config import RunConfig
from jaxmlp.data import load_splits
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.parallel import is_writer
from jaxmlp.runs.checkpoint import has_checkpoint
from jaxmlp.runs.lifecycle import check_fresh_run_dir, stop_on_signals
from jaxmlp.runs.sweep_checkpoint import (SWEEP_CHECKPOINT, chunk_saver, load_sweep_checkpoint,
                                         save_sweep_checkpoint)
from jaxmlp.runs.plotter import Plotter
from jaxmlp.sweeps import GRID_AXES, SweepResult, check_sweep, expand_grid, sweep
from jaxmlp.sweeps.axes import AXES
from jaxmlp.training.optim import make_optimizer
from jaxmlp.sweeps.program import model_mesh
from jaxmlp.timing import Clock


def headline_metric(result: SweepResult) -> str:
    """``test_accuracy`` for classification sweeps, ``test_mse`` for regression."""
    row = result.rows[0]
    for k in ("test_accuracy", "test_mse", "val_accuracy", "val_mse", "train_accuracy", "train_mse"):
        if k in row:
            return k
    return "train_loss"


def varied_axes(result: SweepResult) -> list[str]:
    """Grid axes (other than seed) that take more than one value, in grid order."""
    return [k for k in GRID_AXES if k != "seed" and len({r[k] for r in result.rows}) > 1]


def group_stats(result: SweepResult, axes: list[str], metric: str):
    """Mean and std of ``metric`` over the rows sharing each combination of ``axes``."""
    groups: dict[tuple, list[float]] = {}
    for r in result.rows:
        groups.setdefault(tuple(r[a] for a in axes), []).append(r[metric])
    keys = sorted(groups, key=lambda t: tuple((x is None, x) for x in t))
    mean = np.array([np.nanmean(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in keys])
    std = np.array([np.nanstd(groups[k]) if np.isfinite(groups[k]).any() else np.nan for k in keys])
    return keys, mean, std


def rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def histories_csv(result: SweepResult) -> str:
    keys = sorted(result.histories)
    n, E = result.histories[keys[0]].shape
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "epoch", *keys])
    for i in range(n):
        for e in range(E):
            vals = [result.histories[k][i, e] for k in keys]
            if all(math.isnan(v) for v in vals):
                continue
            w.writerow([i, e + 1, *("" if math.isnan(v) else f"{v:.7g}" for v in vals)])
    return buf.getvalue()


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def figure_jobs(result: SweepResult, heatmap_axes: tuple[str, str] | None = None) -> dict:
    """A sweep's figures (only those its grid supports) as ``file name -> (function of
    jaxmlp.runs.plots, keyword arguments)``, the arguments plain lists and numbers (JSON-able, for
    a ``jaxmlp.runs.plotter.Plotter``)."""
    metric = headline_metric(result)
    axes = varied_axes(result)
    figs: dict[str, bytes] = {}
    hm = heatmap_axes or (tuple(axes[:2]) if len(axes) >= 2 else None)
    if hm and all(a in axes for a in hm):
        rows_v = sorted({r[hm[0]] for r in result.rows})
        cols_v = sorted({r[hm[1]] for r in result.rows})
        keys, mean, std = group_stats(result, list(hm), metric)
        lut = {k: (m, s) for k, m, s in zip(keys, mean, std)}
        M = np.array([[lut.get((a, b), (np.nan, np.nan))[0] for b in cols_v] for a in rows_v])
        S = np.array([[lut.get((a, b), (np.nan, np.nan))[1] for b in cols_v] for a in rows_v])
        figs["heatmap.png"] = ("heatmap_figure", dict(
            values=M, row_labels=rows_v, col_labels=cols_v, xlabel=hm[1], ylabel=hm[0], spread=S,
            title=f"{metric} (mean ± std over seeds)"))
    curve_key = "val_loss" if "val_loss" in result.histories else "train_loss"
    if axes:
        a = axes[0]
        values = sorted({r[a] for r in result.rows})
        H = result.histories[curve_key]
        epochs = np.arange(1, H.shape[1] + 1)
        series = {}
        for v in values:
            idx = [i for i, r in enumerate(result.rows) if r[a] == v]
            with np.errstate(all="ignore"):
                series[f"{a}={v}"] = np.nanmean(H[idx], axis=0)
        figs["curves.png"] = ("lines_figure", dict(
            x=epochs, series=series, xlabel="epoch", ylabel=curve_key, logy=True,
            title=f"{curve_key} per {a} (mean over the rest)"))
    for axis, name in (("width", "vs_width.png"), ("temperature", "vs_temperature.png")):
        if axis in axes:
            keys, mean, std = group_stats(result, [axis], metric)
            figs[name] = ("lines_figure", dict(
                x=[k[0] for k in keys], series={metric: mean}, errors={metric: std},
                xlabel=axis, ylabel=metric, logx=True, title=f"{metric} vs {axis} (mean ± std)"))
    return {name: (fn, _plain(kw)) for name, (fn, kw) in figs.items()}


def _plain(obj):
    """Arrays and numpy scalars as lists and Python numbers (NaN kept: JSON between Python
    processes carries it)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def figures(result: SweepResult, heatmap_axes: tuple[str, str] | None = None) -> dict[str, bytes]:
    """PNG figures of a sweep by file name (``figure_jobs`` drawn here)."""
    from jaxmlp.runs.plots import FIGURES
    return {name: FIGURES[fn](**kw) for name, (fn, kw) in figure_jobs(result, heatmap_axes).items()}


def write_sweep_folder(out, result: SweepResult, config: dict,
                       heatmap_axes: tuple[str, str] | None = None, plotter=None) -> None:
    """Write a sweep's folder (see the module docstring); every file is written atomically.
    With a ``jaxmlp.runs.plotter.Plotter`` the figures go to it first (its ``finish`` writes them),
    so a worker draws them while the tables are written; without one they are drawn here."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if plotter is not None:
        for name, (fn, kw) in figure_jobs(result, heatmap_axes).items():
            plotter.submit(out / name, fn, **kw)
    info = {k: v for k, v in result.info.items() if k != "snapshot"}
    atomic_write_text(out / "config.json", json.dumps(_json_safe(config), indent=2) + "\n")
    atomic_write_text(out / "results.csv", rows_csv(result.rows))
    atomic_write_text(out / "results.json",
                      json.dumps(_json_safe({"rows": result.rows, "info": info}), indent=2) + "\n")
    buf = io.BytesIO()
    np.savez(buf, **result.histories)
    atomic_write_bytes(out / "histories.npz", buf.getvalue())
    atomic_write_text(out / "histories.csv", histories_csv(result))
    if plotter is None:
        for name, png in figures(result, heatmap_axes).items():
            atomic_write_bytes(out / name, png)


#: How a sweep's best model is chosen: on validation data only (test metrics are reported,
#: never used to choose); the first key a sweep's rows hold decides, with the sign that makes
#: lower better.
SELECTION = (("val_accuracy", -1.0), ("val_loss", 1.0), ("train_loss", 1.0))


def best_model(result: SweepResult) -> tuple[int, str]:
    """``(index, metric)``: the model with the best validation metric (``SELECTION``; the first
    of equals) and the metric it was chosen by. Non-finite values (diverged models) are never
    chosen; if every model diverged, the first one."""
    key, sign = next((k, s) for k, s in SELECTION if k in result.rows[0])
    vals = result.column(key).astype(float)
    order = np.where(np.isfinite(vals), sign * vals, np.inf)
    return (int(np.argmin(order)) if np.isfinite(order).any() else 0), key


def read_grid_file(path) -> dict:
    """A JSON or TOML grid file: ``{axis: [values], "seeds": ...}`` (``ConfigError`` if it is
    missing or malformed)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"grid file {path} not found")
    try:
        if p.suffix == ".toml":
            import tomllib
            grid = tomllib.loads(p.read_text())
        else:
            grid = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"grid file {path} is not valid {p.suffix.lstrip('.') or 'JSON'}: "
                          f"{str(e).splitlines()[0]}") from None
    if not isinstance(grid, dict):
        raise ConfigError(f"grid file {path} must hold a mapping of axis -> list of values")
    return grid


def _check_heatmap(heatmap: str | None, grid: dict) -> None:
    """``--heatmap``: two different axes the grid varies (a heatmap of other axes would
    silently not be drawn: ``figure_jobs``)."""
    if not heatmap:
        return
    names = heatmap.split(",")
    if len(names) != 2:
        raise ConfigError("the heatmap takes two axis names, e.g. width,lr")
    axes = [n for n in GRID_AXES if n != "seed"]
    unknown = [n for n in names if n not in axes]
    if unknown:
        raise ConfigError(f"unknown heatmap axis {', '.join(map(repr, unknown))}; use two of "
                          f"{', '.join(axes)}")
    if names[0] == names[1]:
        raise ConfigError(f"the heatmap takes two different axes, got {heatmap!r}")
    fixed = [n for n in names if len(grid.get(n, ())) < 2]
    if fixed:
        raise ConfigError(f"heatmap axis {', '.join(fixed)} is not swept (give it two or more "
                          "values)")


def sweep_setup(cfg: RunConfig, grid: dict, seeds, *, max_pad_ratio: float = 8.0,
                heatmap: str | None = None, data_devices: int = 1,
                fast_compile: bool | None = None, packing="auto") -> dict:
    """A sweep's full description (saved as its config.json), validated before any compile:
    every model of ``grid`` x ``seeds`` must be a valid config (``ConfigError`` otherwise)."""
    for axis, v in grid.items():
        if not isinstance(v, list):
            raise ConfigError(f"grid axis {axis} must be a list of values")
    grid = dict(grid)
    for name, axis in AXES.items():  # int axes from a grid file may hold 16.0
        if axis.type is int and name in grid:
            grid[name] = [int(v) if isinstance(v, float) and v.is_integer() else v
                          for v in grid[name]]
    if not isinstance(seeds, (int, list)) or isinstance(seeds, bool) or (isinstance(seeds, int) and seeds < 1):
        raise ConfigError(f"seeds must be a positive integer or a list, got {seeds!r}")
    expand_grid(grid, seeds, cfg.train, cfg.model)  # validate every model's values
    make_optimizer(cfg.train.optimizer)  # an optimizer name the step can use
    _check_heatmap(heatmap, grid)
    if data_devices < 1:
        raise ConfigError(f"data_devices must be >= 1, got {data_devices}")
    return {"run": cfg.to_dict(), "grid": grid, "seeds": seeds, "max_pad_ratio": max_pad_ratio,
            "heatmap": heatmap, "data_devices": data_devices, "fast_compile": fast_compile,
            "packing": packing}


def load_sweep_setup(out) -> dict:
    """The setup a sweep folder's config.json holds (``CheckpointError`` if it holds none)."""
    try:
        setup = json.loads((Path(out) / "config.json").read_text())
        RunConfig.from_dict(setup["run"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{out} is not a sweep folder (no valid config.json)") from None
    return setup


class _Bar:
    """A tqdm bar over one program's epochs, naming the program and counting its models live,
    stopped early and diverged (silent when disabled)."""

    def __init__(self, epochs: int, n_models: int, enabled: bool):
        self.bar, self.n_models = None, n_models
        if enabled:
            import sys

            from tqdm import tqdm
            self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, epochs_done: int, program: int, n_programs: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"program {program + 1}/{n_programs} ({self.n_models} models)")
            self.bar.n = epochs_done
            self.bar.refresh()

    def models(self, live: int, stopped: int, diverged: int) -> None:
        """The current program's models after a chunk."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"live {live}, stopped early {stopped}, diverged {diverged}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _events(out: Path, cfg: RunConfig, members: list):
    """The sweep's live TensorBoard runs, one per model named by its hyperparameters."""
    from jaxmlp.runs.tensorboard import SweepEvents, model_name
    from jaxmlp.sweeps.axes import row_values
    names = [model_name({"model": i, **row_values(cfg.model, m)}, GRID_AXES)
             for i, m in enumerate(members)]
    return SweepEvents(out, names)


def _also(events, on_chunk):
    """``on_chunk`` that first writes the chunk's epochs to ``events``."""
    def both(snapshot):
        events.update(snapshot)
        on_chunk(snapshot)
    both.wants_state = on_chunk.wants_state
    return both


def _open_folder(out: Path, setup: dict, resume: bool, write: bool) -> dict | None:
    """Check the folder (a fresh one for a new sweep) and write config.json: the saved
    progress to resume from (None: start from the beginning)."""
    if resume:
        return load_sweep_checkpoint(out)[0] if has_checkpoint(out / SWEEP_CHECKPOINT) else None
    if write:
        check_fresh_run_dir(out, SWEEP_CHECKPOINT)
    return None


def sweep_run(setup: dict, out, *, resume: bool = False, devices: int | None = None,
              progress: bool = False, clock: Clock | None = None,
              plotter: Plotter | None = None, tensorboard: bool = False) -> SweepResult:
    """Train the sweep ``setup`` (``sweep_setup`` / ``load_sweep_setup``) into the folder ``out``;
    with ``resume`` continue from its checkpoint. ``devices``: shard the models over that many
    devices; in a multi-process job only process 0 writes files. ``clock`` records the phases'
    times; ``plotter`` receives the figures (the caller then calls its ``finish``); without one
    they are drawn here. SIGINT/SIGTERM stop it at the next chunk boundary with a checkpoint
    (``Interrupted``). ``tensorboard``: one TensorBoard run per model in ``out/tensorboard``,
    written after every chunk."""
    clock, out, write = clock or Clock(), Path(out), is_writer()
    cfg = RunConfig.from_dict(setup["run"])
    saved = _open_folder(out, setup, resume, write)
    members = expand_grid(setup["grid"], setup["seeds"], cfg.train, cfg.model)
    model_mesh(devices, setup.get("data_devices", 1))  # the device layout, checked up front
    with clock.phase("data"):
        splits = load_splits(cfg.data)
    check_sweep(splits, cfg.model, cfg.train, members)  # before the folder is made
    if write and not resume:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(setup, indent=2) + "\n")
    bar = _Bar(cfg.train.epochs, len(members), progress)
    events = _events(out, cfg, members) if tensorboard and write else None
    try:
        with stop_on_signals() as flag, clock.phase("train"):
            on_chunk = chunk_saver(out, setup, cfg.train.checkpoint_every, write, flag)
            result = sweep(splits, model=cfg.model, train=cfg.train, grid=setup["grid"],
                           seeds=setup["seeds"], max_pad_ratio=setup["max_pad_ratio"],
                           n_devices=devices, data_devices=setup.get("data_devices", 1),
                           fast_compile=setup.get("fast_compile"),
                           packing=setup.get("packing", "pad"), progress=bar, resume=saved,
                           on_chunk=on_chunk if events is None else _also(events, on_chunk))
    finally:
        bar.close()
        if events is not None:
            events.close()
    if write:
        with clock.phase("write"):
            save_sweep_checkpoint(out, result.info["snapshot"], setup)
            heat = tuple(setup["heatmap"].split(",")) if setup.get("heatmap") else None
            write_sweep_folder(out, result, {**setup, "strategy": result.info["strategy"]}, heat,
                               plotter=plotter)

    return result
