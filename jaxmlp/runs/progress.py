"""What a training run shows while it works: a progress bar that names its phase (loading
data, compiling, training with the compile's time or "cached", writing) and moves between
compiled chunks on the in-chunk step reports (``jaxmlp.training.steplog``), and the run
folder's ``steps.jsonl``: one line per report, flushed as it comes (``tail -f``-friendly).
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path

STEPS_FILE = "steps.jsonl"

#: tqdm's bar with fractional epochs (in-chunk reports move it between epoch ends).
BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total_fmt} epochs "
              "[{elapsed}<{remaining}{postfix}]")


class Progress:
    """A tqdm bar over epochs with the run's phase as its description (silent when disabled).

    ``step`` may be called from XLA's thread while a chunk runs; ``update`` after each chunk.
    ``events`` (``jaxmlp.runs.tensorboard.RunEvents``) gets the same reports and epochs."""

    def __init__(self, total: int, enabled: bool, events=None):
        self.bar, self.total, self.events = None, total, events
        self.n_train = self.n_batches = 1
        self.t0, self.start = time.perf_counter(), 0
        self.loss = None            # running (exponentially averaged) mini-batch loss
        self._lock = threading.Lock()
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="epoch", dynamic_ncols=True, file=sys.stderr,
                            bar_format=BAR_FORMAT)
        self.phase("loading data")

    def phase(self, name: str) -> None:
        if self.bar is not None:
            with self._lock:
                self.bar.set_description_str(name, refresh=True)

    def training(self, epoch: int, n_train: int, n_batches: int, compile_s: float,
                 source: str | None) -> None:
        """The training chunk is ready: start the clock, say how it was obtained."""
        self.n_train, self.n_batches, self.start = n_train, max(1, n_batches), epoch
        self.t0 = time.perf_counter()
        how = ("program cached" if source in ("memory", "disk")
               else f"compiled in {compile_s:.2f} s")
        if self.bar is not None:
            with self._lock:  # tqdm's clock (elapsed, rate, time left) starts with training
                self.bar.initial = epoch
                self.bar.reset(total=self.total)
                self.bar.n = epoch
            self.phase(f"training ({how})")

    def step(self, step: int, loss: float) -> None:
        """An in-chunk report: move to the fractional epoch, show the running loss."""
        if math.isfinite(loss):
            self.loss = loss if self.loss is None else 0.8 * self.loss + 0.2 * loss
        if self.events is not None:
            self.events.step(step, loss)
        self._show(step / self.n_batches, None)

    def update(self, history: dict) -> None:
        """A chunk ended: the exact epoch, its train loss and held-out metric."""
        if not history.get("epoch"):
            return
        if self.events is not None:
            self.events.epochs(history)
        post = {}
        for k in ("val_accuracy", "val_mse", "test_accuracy", "test_mse"):
            if k in history:
                post[k.split("_")[1][:3]] = f"{history[k][-1]:.4f}"
                break
        self.loss = history["train_loss"][-1]
        self._show(float(history["epoch"][-1]), post)

    def _show(self, epoch: float, extra: dict | None) -> None:
        if self.bar is None:
            return
        dt = max(time.perf_counter() - self.t0, 1e-9)
        post = {"loss": f"{self.loss:.4f}"} if self.loss is not None else {}
        post.update(extra or {})
        post["samples/s"] = f"{(epoch - self.start) * self.n_train / dt:.3g}"
        with self._lock:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(min(epoch, self.total) - self.bar.n)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.bar is not None:
            self.bar.close()


class StepLog:
    """``steps.jsonl`` of a run folder: ``{"step", "epoch", "loss", "time_s"}`` per report
    (``time_s`` from the start of training in this process), appended (a resumed run
    continues the file) and flushed line by line."""

    def __init__(self, out: Path | None, n_batches: int):
        self.n_batches = max(1, n_batches)
        self.t0 = time.perf_counter()
        self.f = open(Path(out) / STEPS_FILE, "a", encoding="utf-8") if out is not None else None

    def start(self) -> None:
        """Training starts now: ``time_s`` counts from here."""
        self.t0 = time.perf_counter()

    def write(self, step: int, loss: float) -> None:
        if self.f is None:
            return
        row = {"step": step, "epoch": round(step / self.n_batches, 6),
               "loss": loss if math.isfinite(loss) else None,
               "time_s": round(time.perf_counter() - self.t0, 4)}
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
