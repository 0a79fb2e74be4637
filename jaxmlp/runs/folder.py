"""A training run's folder: ``train_run`` trains one model (``jaxmlp.training``) into a folder
that records it, and resumes it from that folder's checkpoint.

Layout of a run folder::

    config.json        the RunConfig
    metrics.jsonl      one JSON object per epoch (epoch, train_loss, val_loss, test_loss, ...)
    metrics.csv        the same table as CSV
    summary.json       final metrics, timings, flags (written when the run ends)
    steps.jsonl        in-chunk loss reports (step, epoch, loss, time_s), with --log-every
    checkpoint.npz     train state + config + history (atomic; the previous one kept as .prev)
    curves.png         loss and metric curves

("Run" here is this folder and its training; ``jaxmlp.training.Run`` is the compiled training
program it drives. Reading a finished run back for predictions is ``jaxmlp.runs.predict``.)
"""
from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path

import jax
import numpy as np

from jaxmlp.atomic import atomic_write_text
from jaxmlp.runs import checkpoint as ckpt
from jaxmlp.config import RunConfig
from jaxmlp.data import load_splits
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.parallel import is_writer, mesh_for, peer_watchdog
from jaxmlp.runs.lifecycle import Interrupted, check_fresh_run_dir, stop_on_signals
from jaxmlp.runs.plotter import Plotter
from jaxmlp.runs.progress import Progress, StepLog
from jaxmlp.timing import Clock
from jaxmlp.training import Run, host_input, prepare, summarize, train_loop

METRIC_KEYS_FIRST = ("epoch", "train_loss", "val_loss", "test_loss")


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
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _write_progress(out: Path, cfg: RunConfig, state, history: dict, extra: dict) -> None:
    rows = history_rows(history)
    atomic_write_text(out / "metrics.jsonl", metrics_jsonl(rows))
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
    classes = getattr(splits, "classes", None)
    if classes is not None:  # the original label value of each class id (predict maps by it)
        norm["classes"] = [int(c) for c in classes]
    if getattr(splits, "y_mean", None) is not None:
        norm["y_mean"] = np.asarray(splits.y_mean).tolist()
        norm["y_std"] = np.asarray(splits.y_std).tolist()
    return norm


def load_run_config(run_dir) -> RunConfig:
    """The RunConfig of a run folder's config.json (``CheckpointError`` if there is none)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is unreadable or not valid JSON ({type(e).__name__})") from None
    return RunConfig.from_dict(raw)


class _Checkpoints:
    """When the run folder's checkpoint is refreshed (every ``checkpoint_every`` epochs, on a
    signal, at the end) and the epoch of the last one written."""

    def __init__(self, out: Path, cfg: RunConfig, extra: dict, write: bool, epoch: int,
                 resumed_from: int | None):
        self.out, self.cfg, self.extra, self.write = out, cfg, extra, write
        self.every = cfg.train.checkpoint_every
        self.last_epoch = epoch        # the last chunk boundary a checkpoint was due at
        self.last = resumed_from       # the epoch of the newest checkpoint on disk

    def due(self, epoch: int) -> bool:
        return bool(self.every) and epoch - self.last_epoch >= self.every

    def save(self, state, history: dict) -> None:
        _write_progress(self.out, self.cfg, state, history, self.extra)
        self.last_epoch = self.last = int(state["epoch"])


def _resume(run: Run, cfg: RunConfig, out: Path) -> tuple[Run, dict, int | None]:
    """``run`` with the state of ``out``'s checkpoint: ``(run, prior history, its epoch)``; a
    folder without one (stopped before its first checkpoint) starts over with a warning."""
    path = out / ckpt.CHECKPOINT_NAME
    if not ckpt.has_checkpoint(path):
        warnings.warn(f"{out} has no checkpoint yet (stopped before the first one); "
                      "starting it from epoch 0", stacklevel=3)
        return run, {}, None
    leaves, meta = ckpt.load_checkpoint(path)
    try:
        saved = RunConfig.from_dict(meta["config"])
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path} holds an invalid config: {e}") from None
    if saved.model != cfg.model or saved.data != cfg.data:
        raise ConfigError(f"the model/data config in {out / 'config.json'} differs from the "
                          "checkpoint's; cannot resume")
    restored = ckpt.restore_state(run.state, leaves)
    if run.spec.mesh is not None:
        restored = jax.tree.map(lambda a: host_input(run.spec.mesh, np.asarray(a)), restored)
    prior = {k: list(v) for k, v in meta["history"].items()}
    return run._replace(state=restored), prior, int(meta["epoch"])


def _chunk_callback(cfg: RunConfig, out: Path, prior: dict, bar: Progress, saves: _Checkpoints,
                    flag: dict):
    """``train_loop``'s callback: progress bar, checkpoint when due, stop on a signal."""
    def callback(state, history):
        merged = {k: prior.get(k, []) + v for k, v in history.items()}
        bar.update(merged)
        epoch = int(state["epoch"])
        finished = epoch >= cfg.train.epochs or bool(state["stopped"]) or bool(state["diverged"])
        stop = flag["stop"] and not finished
        if saves.write and (saves.due(epoch) or stop) and _saveable(state):
            saves.save(state, merged)
        if stop:
            saved = ("no checkpoint saved" if saves.last is None or not saves.write
                     else f"checkpoint saved at epoch {saves.last}")
            raise Interrupted(f"{flag['stop']} received; {saved}; resume with: "
                              f"jaxmlp train --resume {out}", run_dir=out, epoch=epoch)
    return callback


def _train(run: Run, cfg: RunConfig, out: Path, prior: dict, saves: _Checkpoints, *,
           bar: Progress, peer_timeout_s, clock: Clock):
    """The training loop under signal handling, a peer watchdog and the progress bar (with
    the step reports of a step-logging run, also written to ``steps.jsonl``):
    ``(state, history including prior epochs, timing)``."""
    steps = StepLog(out if saves.write and run.spec.step_log else None, run.spec.n_batches)

    def on_step(step, loss):
        bar.step(step, loss)
        steps.write(step, loss)

    def on_compiled(compile_s, source):
        steps.start()
        bar.training(int(run.state["epoch"]), run.spec.n_train, run.spec.n_batches, compile_s,
                     source)
    with stop_on_signals() as flag:
        dog = peer_watchdog(peer_timeout_s)
        try:
            with clock.phase("train"):
                state, history, timing = train_loop(
                    run, cfg.train.epochs, watchdog=dog, on_step=on_step,
                    on_compiled=on_compiled,
                    callback=_chunk_callback(cfg, out, prior, bar, saves, flag))
        finally:
            dog.close()
            steps.close()
    history = {k: prior.get(k, []) + history.get(k, []) for k in set(prior) | set(history)}
    return state, history, timing


def train_run(cfg: RunConfig, out_dir, *, resume: bool = False, progress: bool = False,
              epochs: int | None = None, write: bool = True, devices: int | None = None,
              peer_timeout_s: float | None = None, clock: Clock | None = None,
              plotter: Plotter | None = None, fast_compile: bool | None = None,
              log_every: int | str | None = None,
              tensorboard: bool = False) -> tuple[Run, dict, dict]:
    """Train per ``cfg``, writing the run folder ``out_dir``; with ``resume`` continue from its
    checkpoint. ``epochs`` overrides the total epoch count (e.g. to extend a resumed run).
    ``devices`` > 1 trains data-parallel over that many devices (of all processes); in a
    multi-process job only process 0 writes files. ``fast_compile`` and ``log_every`` as
    ``jaxmlp.fit`` (the reports move the bar and go to ``steps.jsonl``). ``tensorboard``:
    also TensorBoard event files in ``out_dir/tensorboard`` (``jaxmlp.runs.tensorboard``).
    ``clock`` records the phases' times; ``plotter`` receives the figure (the caller then
    calls its ``finish``); without one the figure is drawn here. SIGINT/SIGTERM stop it at
    the next chunk boundary with a checkpoint (``Interrupted``).

    Returns ``(run, state, history)`` where history holds per-epoch arrays and ``final``.
    """
    clock = clock or Clock()
    own_plotter = plotter is None
    plotter = Plotter(worker=False) if own_plotter else plotter
    out = Path(out_dir)
    if epochs is not None:
        cfg = cfg.replace(train=cfg.train.replace(epochs=epochs))
    write = write and is_writer()
    if write and not resume:
        check_fresh_run_dir(out, ckpt.CHECKPOINT_NAME)
    events = None
    if tensorboard and write:
        from jaxmlp.runs.tensorboard import run_events
        events = run_events(out)
    bar = Progress(cfg.train.epochs, progress, events=events)
    try:
        return _train_run(cfg, out, bar, resume=resume, write=write, devices=devices,
                          peer_timeout_s=peer_timeout_s, clock=clock, plotter=plotter,
                          own_plotter=own_plotter, fast_compile=fast_compile,
                          log_every=log_every)
    finally:
        bar.close()


def _train_run(cfg: RunConfig, out: Path, bar: Progress, *, resume, write, devices,
               peer_timeout_s, clock, plotter, own_plotter, fast_compile, log_every):
    """``train_run`` after its arguments are settled, showing its phases on ``bar``."""
    with clock.phase("data"):
        splits = load_splits(cfg.data)
    bar.phase("compiling")
    with clock.phase("train"):
        run = prepare(splits, cfg.model, cfg.train,
                      mesh=mesh_for(devices) if devices not in (None, 1) else None,
                      fast_compile=fast_compile, log_every=log_every)
    run, prior, resumed_from = _resume(run, cfg, out) if resume else (run, {}, None)
    if bar.events is not None:  # a resumed run's earlier epochs are in its event files already
        bar.events.done = len(prior.get("epoch", []))
    extra = {"normalizer": _normalizer(splits)}
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
    saves = _Checkpoints(out, cfg, extra, write, int(run.state["epoch"]), resumed_from)
    state, history, timing = _train(run, cfg, out, prior, saves, bar=bar,
                                    peer_timeout_s=peer_timeout_s, clock=clock)
    bar.phase("writing")
    with clock.phase("train"):
        result = summarize(run, state, history, timing)
    if write:  # the figure first: a worker draws it while the files below are written
        plotter.submit(out / "curves.png", "history_figure", history=figure_history(result),
                       title=f"{cfg.data.dataset}: {cfg.model.hidden} {cfg.model.activation}")
    with clock.phase("write"):
        _write_results(state, history, result, saves)
    if own_plotter:
        with clock.phase("plot"):
            plotter.finish()
    bar.phase("done")
    return run, state, result


def figure_history(history: dict) -> dict:
    """The per-epoch columns ``history_figure`` draws, as JSON-able lists."""
    keys = ("epoch", "train_loss", "val_loss", "test_loss", "val_accuracy", "test_accuracy",
            "val_mse", "test_mse")
    return {k: np.asarray(history[k]).tolist() for k in keys if k in history}


def _write_results(state, history: dict, result: dict, saves: _Checkpoints) -> None:
    """The end of a run: last checkpoint (unless diverged), metrics, summary."""
    if not saves.write:
        return
    out = saves.out
    if _saveable(state) or (saves.last is None and _params_finite(state)):
        saves.save(state, history)
    else:  # diverged: keep the last good checkpoint, record what happened
        atomic_write_text(out / "metrics.jsonl", metrics_jsonl(history_rows(history)))
    result["final"]["checkpoint_epoch"] = saves.last
    atomic_write_text(out / "metrics.csv", metrics_csv(history_rows(result)))
    write_json(out / "summary.json", result["final"])
