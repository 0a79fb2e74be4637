"""TensorBoard event files for a run folder (an optional extra: ``pip install -e
'.[tensorboard]'``, tensorboardX): ``RUN_DIR/tensorboard/`` gets the per-epoch metrics as they
arrive (``train/loss``, ``val/loss``, ``val/accuracy``, ``test/...``, ``lr``) and the in-chunk
step reports (``train/step_loss`` at their step); a sweep folder gets one TensorBoard run per
model, named by its hyperparameters. ``tensorboard --logdir RUN_DIR`` shows them.
"""
from __future__ import annotations

import math
from pathlib import Path

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


def write_sweep(out: Path, rows: list, histories: dict, axes) -> None:
    """One TensorBoard run per sweep model under ``out/tensorboard/``, from its histories
    (``(n_models, epochs)`` arrays); a model's epochs after it stopped are NaN and skipped."""
    for i, row in enumerate(rows):
        ev = RunEvents(Path(out) / TB_DIR / model_name(row, axes))
        n = histories[next(iter(histories))].shape[1]
        ev.epochs({"epoch": list(range(1, n + 1)),
                   **{k: list(v[i]) for k, v in histories.items() if k != "ran"}})
        ev.close()
