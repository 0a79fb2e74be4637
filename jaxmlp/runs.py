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
from contextlib import contextmanager
from pathlib import Path

import jax
import numpy as np

from . import checkpoint as ckpt
from .config import RunConfig
from .data import load_splits
from .errors import CheckpointError, ConfigError
from .train import Run, best_params, prepare, summarize, train_loop

METRIC_KEYS_FIRST = ("epoch", "train_loss", "val_loss", "test_loss")


class Interrupted(Exception):
    """Raised when a run was stopped by SIGINT/SIGTERM after saving its checkpoint."""


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
    """Turn SIGINT/SIGTERM into a flag the training callback checks between chunks."""
    flag = {"stop": None}

    def handler(signum, _frame):
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


def _normalizer(splits) -> dict:
    norm = {"x_mean": np.asarray(splits.x_mean).tolist(), "x_std": np.asarray(splits.x_std).tolist(),
            "task": splits.task, "n_classes": splits.n_classes}
    if getattr(splits, "y_mean", None) is not None:
        norm["y_mean"] = np.asarray(splits.y_mean).tolist()
        norm["y_std"] = np.asarray(splits.y_std).tolist()
    return norm


def load_run_config(run_dir) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.json)")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} is not valid JSON") from None


def train_run(cfg: RunConfig, out_dir, *, resume: bool = False, progress: bool = False,
              epochs: int | None = None, write: bool = True) -> tuple[Run, dict, dict]:
    """Train per ``cfg``, writing the run folder ``out_dir``; with ``resume`` continue from its
    checkpoint. ``epochs`` overrides the total epoch count (e.g. to extend a resumed run).

    Returns ``(run, state, history)`` where history holds per-epoch arrays and ``final``.
    """
    out = Path(out_dir)
    if epochs is not None:
        cfg = cfg.replace(train=cfg.train.replace(epochs=epochs))
    splits = load_splits(cfg.data)
    run = prepare(splits, cfg.model, cfg.train)
    prior: dict = {}
    if resume:
        leaves, meta = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_NAME)
        saved = RunConfig.from_dict(meta["config"])
        if saved.model != cfg.model or saved.data != cfg.data:
            raise ConfigError("the resumed run's model/data config differs from the checkpoint's")
        run = run._replace(state=ckpt.restore_state(run.state, leaves))
        prior = {k: list(v) for k, v in meta["history"].items()}
    extra = {"normalizer": _normalizer(splits)}
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
    bar = Progress(cfg.train.epochs, int(run.state["epoch"]), progress, run.spec.n_train)
    every = cfg.train.checkpoint_every
    last_saved = {"epoch": int(run.state["epoch"])}

    with stop_on_signals() as flag:
        def callback(state, history):
            merged = {k: prior.get(k, []) + v for k, v in history.items()}
            bar.update(merged)
            epoch = int(state["epoch"])
            due = every and epoch - last_saved["epoch"] >= every
            if write and (due or flag["stop"]):
                _write_progress(out, cfg, state, merged, extra)
                last_saved["epoch"] = epoch
            if flag["stop"]:
                raise Interrupted(f"{flag['stop']} received at epoch {epoch}; checkpoint saved, "
                                  f"resume with: jaxmlp train --resume {out}")
        try:
            state, history, timing = train_loop(run, cfg.train.epochs, callback=callback)
        finally:
            bar.close()
    history = {k: prior.get(k, []) + history.get(k, []) for k in set(prior) | set(history)}
    result = summarize(run, state, history, timing)
    if write:
        _write_progress(out, cfg, state, history, extra)
        rows = history_rows(result)
        ckpt.atomic_write_text(out / "metrics.csv", metrics_csv(rows))
        write_json(out / "summary.json", result["final"])
        from .plots import history_figure
        ckpt.atomic_write_bytes(out / "curves.png", history_figure(
            result, title=f"{cfg.data.dataset}: {cfg.model.hidden} {cfg.model.activation}"))
    return run, state, result


def load_run(run_dir):
    """``(cfg, params, normalizer)`` of a run folder's checkpoint (the best params under early
    stopping)."""
    cfg = load_run_config(run_dir)
    leaves, meta = ckpt.load_checkpoint(Path(run_dir) / ckpt.CHECKPOINT_NAME)
    norm = meta["extra"].get("normalizer", {})
    return cfg, leaves, norm


def params_from_run(run_dir):
    """Rebuild the trained params of a run folder (validated against its config)."""
    from .nn import init_mlp
    from .train import init_state, make_spec, model_sizes, run_keys
    cfg, leaves, norm = load_run(run_dir)
    n_features = len(norm["x_mean"])
    task = norm["task"]
    n_out = norm["n_classes"] if task == "classification" else len(norm.get("y_mean", [0]))
    spec = make_spec(cfg.model, cfg.train, task=task, n_train=max(cfg.train.batch_size, 1),
                     has_val=True, has_test=True)
    init_key, data_key = run_keys(cfg.train.seed)
    params = init_mlp(init_key, model_sizes(cfg.model, n_features, n_out), init=cfg.model.init,
                      activation=cfg.model.activation)
    state = ckpt.restore_state(init_state(spec, params, data_key=data_key,
                                          momentum=cfg.train.momentum), leaves)
    return cfg, jax.device_get(best_params(spec, state)), norm
