"""TensorBoard event files for a run folder (an optional extra: ``pip install -e
'.[tensorboard]'``, tensorboardX): ``RUN_DIR/tensorboard/`` gets the per-epoch metrics as they
arrive (``train/loss``, ``val/loss``, ``val/accuracy``, ``test/...``, ``lr``) and the in-chunk
step reports (``train/step_loss`` at their step); a sweep folder gets one TensorBoard run per
model, named by its hyperparameters, written after every compiled chunk.
``tensorboard --logdir RUN_DIR`` shows them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jaxmlp.errors import ConfigError

TB_DIR = "tensorboard"


def _writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard extra: pip install "
                          "'jaxmlp[tensorboard]' (tensorboardX)") from None
    return SummaryWriter


def check_available() -> None:
    """``ConfigError`` (one ``error:`` line from the CLI) when tensorboardX is missing."""
    _writer_class()


def tag(key: str) -> str:
    """A metric's TensorBoard tag: ``val_accuracy`` -> ``val/accuracy``, ``lr`` -> ``lr``."""
    split, _, name = key.partition("_")
    return f"{split}/{name}" if split in ("train", "val", "test") and name else key


class RunEvents:
    """Event files of one run: ``epochs(history)`` writes the epochs not written yet,
    ``step(step, loss)`` one in-chunk report (thread-safe: tensorboardX queues writes)."""

    def __init__(self, logdir: Path):
        self.w = _writer_class()(logdir=str(logdir), flush_secs=2)
        self.done = 0

    def epochs(self, history: dict) -> None:
        ep = history.get("epoch", [])
        for i in range(self.done, len(ep)):
            for k, v in history.items():
                if k == "epoch" or k == "final" or i >= len(v):
                    continue
                v = float(v[i])
                if math.isfinite(v):
                    self.w.add_scalar(tag(k), v, int(ep[i]))
        self.done = len(ep)

    def step(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.w.add_scalar("train/step_loss", loss, int(step))

    def close(self) -> None:
        self.w.flush()
        self.w.close()


def run_events(out: Path) -> RunEvents:
    return RunEvents(Path(out) / TB_DIR)


def model_name(row: dict, axes) -> str:
    """A sweep model's TensorBoard run name: its index and its hyperparameters."""
    parts = [f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}"
             for k in axes if k in row]
    return f"model{row['model']:03d}_" + "_".join(parts)


class SweepEvents:
    """One TensorBoard run per sweep model, written live: ``update(snapshot)`` (``sweep``'s
    ``on_chunk`` snapshot) adds the epochs each model of the running program finished since
    the last call. ``names``: grid row -> run name (``model_name``). A resumed sweep writes its
    earlier epochs again, into new event files of the same runs."""

    def __init__(self, out: Path, names: list):
        self.root, self.names, self.runs = Path(out) / TB_DIR, names, {}

    def update(self, snapshot: dict) -> None:
        prog = snapshot["programs"][-1]
        if not prog.get("chunks"):
            return
        cat = {k: np.concatenate([np.asarray(c[k]) for c in prog["chunks"]], axis=1)
               for k in prog["chunks"][0]}
        ran = cat.pop("ran").astype(bool)
        epochs = list(range(1, ran.shape[1] + 1))
        for pos, row in enumerate(prog["rows"]):
            if row in self.runs and self.runs[row][1] is not prog:
                continue  # a repeat of a model (padding the devices), or written already
            if row not in self.runs:
                self.runs[row] = (RunEvents(self.root / self.names[row]), prog)
            self.runs[row][0].epochs(
                {"epoch": epochs, **{k: np.where(ran[pos], v[pos], np.nan) for k, v in cat.items()}})

    def close(self) -> None:
        for ev, _ in self.runs.values():
            ev.close()
