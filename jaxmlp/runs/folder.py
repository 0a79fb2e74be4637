"""Run folders: a training run with its files (config, metrics, checkpoint, plot) and resume.

Layout of a run folder::

    config.json        the RunConfig
    metrics.jsonl      one JSON object per epoch (epoch, train_loss, val_loss, test_loss, ...)
    metrics.csv        the same table as CSV
    summary.json       final metrics, timings, flags (written when the run ends)
    checkpoint.npz     train state + config + history (atomic; the previous one kept as .prev)
    curves.png         loss and metric curves
"""
from __future__ import annotations

import csv
import io
import json
import math
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import jax
import numpy as np

from jaxmlp.runs import checkpoint as ckpt
from jaxmlp.config import RunConfig
from jaxmlp.data import load_splits
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.parallel import is_writer, mesh_for, peer_watchdog
from jaxmlp.runs.plotter import Plotter
from jaxmlp.timing import Clock
from jaxmlp.training import Run, host_input, best_params, prepare, summarize, train_loop

METRIC_KEYS_FIRST = ("epoch", "train_loss", "val_loss", "test_loss")


class Interrupted(Exception):
    """Raised when a run was stopped by SIGINT/SIGTERM after saving its checkpoint."""

    def __init__(self, message: str, run_dir=None, epoch: int | None = None):
        super().__init__(message)
        self.run_dir = run_dir
        self.epoch = epoch


def history_rows(history: dict) -> list[dict]:
    """Per-epoch dicts from column lists (non-finite values become None in JSON)."""
    keys = [k for k in METRIC_KEYS_FIRST if k in history] + sorted(
        k for k in history if k not in METRIC_KEYS_FIRST and k != "final")
    n = len(history.get("epoch", []))
    rows = []
    for i in range(n):
        row = {}
        for k in keys:
            v = history[k][i]
            v = int(v) if k == "epoch" else float(v)
            row[k] = v if (isinstance(v, int) or math.isfinite(v)) else None
        rows.append(row)
    return rows


def metrics_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def metrics_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_json(path, obj) -> None:
    ckpt.atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextmanager
def stop_on_signals():
    """Turn SIGINT/SIGTERM into a flag the training callback checks between chunks (so the
    run stops at a chunk boundary with a checkpoint). A second SIGINT stops at once with
    ``KeyboardInterrupt`` (no new checkpoint)."""
    flag = {"stop": None}

    def handler(signum, _frame):
        if flag["stop"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = signal.Signals(signum).name

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield flag
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


class Progress:
    """A tqdm bar over epochs showing loss, metric and samples/s (silent when disabled)."""

    def __init__(self, total: int, initial: int, enabled: bool, n_train: int):
        self.bar = None
        self.n_train = n_train
        self.t0 = time.perf_counter()
        self.start = initial
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True,
                            file=sys.stderr)

    def update(self, history: dict) -> None:
        if self.bar is None or not history.get("epoch"):
            return
        epoch = history["epoch"][-1]
        dt = time.perf_counter() - self.t0
        post = {"loss": f"{history['train_loss'][-1]:.4f}"}
        for k in ("val_accuracy", "val_mse", "test_accuracy", "test_mse"):
            if k in history:
                post[k.split("_")[1][:3]] = f"{history[k][-1]:.4f}"
                break
        post["samples/s"] = f"{(epoch - self.start) * self.n_train / max(dt, 1e-9):.3g}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_progress(out: Path, cfg: RunConfig, state, history: dict, extra: dict) -> None:
    rows = history_rows(history)
    ckpt.atomic_write_text(out / "metrics.jsonl", metrics_jsonl(rows))
    ckpt.save_checkpoint(out / ckpt.CHECKPOINT_NAME, state, config=cfg.to_dict(),
                         epoch=int(state["epoch"]), history=history, extra=extra)


def _params_finite(state) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(a)))) for a in jax.tree.leaves(state["params"]))


def _saveable(state) -> bool:
    """A state worth checkpointing: not diverged and with finite params (the compiled run
    already undoes a diverged epoch; the params check is a second line of defence)."""
    return not bool(state["diverged"]) and _params_finite(state)


def _normalizer(splits) -> dict:
    norm = {"x_mean": np.asarray(splits.x_mean).tolist(), "x_std": np.asarray(splits.x_std).tolist(),
            "task": splits.task, "n_classes": splits.n_classes}
    if getattr(splits, "y_mean", None) is not None:
        norm["y_mean"] = np.asarray(splits.y_mean).tolist()
        norm["y_std"] = np.asarray(splits.y_std).tolist()
    return norm


RUN_FILES = ("config.json", ckpt.CHECKPOINT_NAME, ckpt.previous_path(ckpt.CHECKPOINT_NAME).name)


def check_fresh_run_dir(out: Path) -> None:
    """Refuse to start a new run in a folder that already holds one (its checkpoints would be
    mixed with the new run's)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder")
    found = [n for n in RUN_FILES if (out / n).exists()]
    if found:
        raise ConfigError(f"output folder {out} already holds a run ({found[0]}); continue it with "
                          f"--resume {out} or choose another --out")


def load_run_config(run_dir) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is unreadable or not valid JSON ({type(e).__name__})") from None
    return RunConfig.from_dict(raw)


def train_run(cfg: RunConfig, out_dir, *, resume: bool = False, progress: bool = False,
              epochs: int | None = None, write: bool = True, devices: int | None = None,
              peer_timeout_s: float | None = None, clock: Clock | None = None,
              plotter: Plotter | None = None) -> tuple[Run, dict, dict]:
    """Train per ``cfg``, writing the run folder ``out_dir``; with ``resume`` continue from its
    checkpoint. ``epochs`` overrides the total epoch count (e.g. to extend a resumed run).
    ``devices`` > 1 trains data-parallel over that many devices (of all processes); in a
    multi-process job only process 0 writes files. ``clock`` records the phases' times;
    ``plotter`` receives the figure (the caller then calls its ``finish``); without one the
    figure is drawn here.

    Returns ``(run, state, history)`` where history holds per-epoch arrays and ``final``.
    """
    clock = clock or Clock()
    own_plotter = plotter is None
    plotter = Plotter(worker=False) if own_plotter else plotter
    out = Path(out_dir)
    if epochs is not None:
        cfg = cfg.replace(train=cfg.train.replace(epochs=epochs))
    ckpt_path = out / ckpt.CHECKPOINT_NAME
    write = write and is_writer()
    if write and not resume:
        check_fresh_run_dir(out)
    with clock.phase("data"):
        splits = load_splits(cfg.data)
    with clock.phase("train"):
        run = prepare(splits, cfg.model, cfg.train,
                      mesh=mesh_for(devices) if devices not in (None, 1) else None)
    prior: dict = {}
    resumed_from = None
    if resume and not (ckpt_path.exists() or ckpt.previous_path(ckpt_path).exists()):
        warnings.warn(f"{out} has no checkpoint yet (stopped before the first one); "
                      "starting it from epoch 0", stacklevel=2)
    elif resume:
        leaves, meta = ckpt.load_checkpoint(ckpt_path)
        try:
            saved = RunConfig.from_dict(meta["config"])
        except ConfigError as e:
            raise CheckpointError(f"checkpoint {ckpt_path} holds an invalid config: {e}") from None
        if saved.model != cfg.model or saved.data != cfg.data:
            raise ConfigError(f"the model/data config in {out / 'config.json'} differs from the "
                              "checkpoint's; cannot resume")
        restored = ckpt.restore_state(run.state, leaves)
        if run.spec.mesh is not None:
            restored = jax.tree.map(lambda a: host_input(run.spec.mesh, np.asarray(a)), restored)
        run = run._replace(state=restored)
        prior = {k: list(v) for k, v in meta["history"].items()}
        resumed_from = int(meta["epoch"])
    extra = {"normalizer": _normalizer(splits)}
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
    bar = Progress(cfg.train.epochs, int(run.state["epoch"]), progress, run.spec.n_train)
    every = cfg.train.checkpoint_every
    last_saved = {"epoch": int(run.state["epoch"]), "checkpoint": resumed_from}

    with stop_on_signals() as flag:
        def callback(state, history):
            merged = {k: prior.get(k, []) + v for k, v in history.items()}
            bar.update(merged)
            epoch = int(state["epoch"])
            due = every and epoch - last_saved["epoch"] >= every
            finished = epoch >= cfg.train.epochs or bool(state["stopped"]) or bool(state["diverged"])
            stop = flag["stop"] and not finished
            if write and (due or stop) and _saveable(state):
                _write_progress(out, cfg, state, merged, extra)
                last_saved["epoch"] = last_saved["checkpoint"] = epoch
            if stop:
                ck = last_saved["checkpoint"]
                saved = "no checkpoint saved" if ck is None or not write else (
                    f"checkpoint saved at epoch {ck}")
                raise Interrupted(f"{flag['stop']} received; {saved}; resume with: "
                                  f"jaxmlp train --resume {out}", run_dir=out, epoch=epoch)
        dog = peer_watchdog(peer_timeout_s)
        try:
            with clock.phase("train"):
                state, history, timing = train_loop(run, cfg.train.epochs, callback=callback,
                                                    watchdog=dog)
        finally:
            dog.close()
            bar.close()
    history = {k: prior.get(k, []) + history.get(k, []) for k in set(prior) | set(history)}
    with clock.phase("train"):
        result = summarize(run, state, history, timing)
    if write:  # the figure first: a worker draws it while the files below are written
        plotter.submit(out / "curves.png", "history_figure", history=figure_history(result),
                       title=f"{cfg.data.dataset}: {cfg.model.hidden} {cfg.model.activation}")
    with clock.phase("write"):
        _write_results(out, cfg, state, history, result, extra, last_saved, write)
    if own_plotter:
        with clock.phase("plot"):
            plotter.finish()
    return run, state, result


def figure_history(history: dict) -> dict:
    """The per-epoch columns ``history_figure`` draws, as JSON-able lists."""
    keys = ("epoch", "train_loss", "val_loss", "test_loss", "val_accuracy", "test_accuracy",
            "val_mse", "test_mse")
    return {k: np.asarray(history[k]).tolist() for k in keys if k in history}


def _write_results(out: Path, cfg: RunConfig, state, history: dict, result: dict, extra: dict,
                   last_saved: dict, write: bool) -> None:
    """The end of a run: last checkpoint (unless diverged), metrics, summary."""
    if write:
        if _saveable(state) or (last_saved["checkpoint"] is None and _params_finite(state)):
            _write_progress(out, cfg, state, history, extra)
            last_saved["checkpoint"] = int(state["epoch"])
        else:  # diverged: keep the last good checkpoint, record what happened
            ckpt.atomic_write_text(out / "metrics.jsonl", metrics_jsonl(history_rows(history)))
        result["final"]["checkpoint_epoch"] = last_saved["checkpoint"]
        rows = history_rows(result)
        ckpt.atomic_write_text(out / "metrics.csv", metrics_csv(rows))
        write_json(out / "summary.json", result["final"])


def load_run(run_dir):
    """``(cfg, params, normalizer)`` of a run folder's checkpoint (the best params under early
    stopping)."""
    cfg = load_run_config(run_dir)
    leaves, meta = ckpt.load_checkpoint(Path(run_dir) / ckpt.CHECKPOINT_NAME)
    norm = meta["extra"].get("normalizer", {})
    return cfg, leaves, norm


def params_from_run(run_dir):
    """Rebuild the trained params of a run folder (validated against its config)."""
    from jaxmlp.nn import init_mlp
    from jaxmlp.training import init_key, init_state, make_spec, model_sizes
    cfg, leaves, norm = load_run(run_dir)
    n_features = len(norm["x_mean"])
    task = norm["task"]
    n_out = norm["n_classes"] if task == "classification" else len(norm.get("y_mean", [0]))
    spec = make_spec(cfg.model, cfg.train, task=task, n_train=max(cfg.train.batch_size, 1),
                     has_val=True, has_test=True)
    params = init_mlp(init_key(cfg.train.seed), model_sizes(cfg.model, n_features, n_out),
                      init=cfg.model.init, activation=cfg.model.activation)
    state = ckpt.restore_state(init_state(spec, params, momentum=cfg.train.momentum), leaves)
    return cfg, jax.device_get(best_params(spec, state)), norm
