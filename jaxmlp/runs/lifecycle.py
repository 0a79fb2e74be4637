"""What every folder-writing driver (``folder.train_run``, ``sweep_folder.sweep_run``) shares
around its training: choosing a new folder, refusing to start over an existing run, and
stopping at a chunk boundary on SIGINT/SIGTERM.
"""
from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from pathlib import Path

from jaxmlp.errors import ConfigError
from jaxmlp.runs.checkpoint import previous_path


class Interrupted(Exception):
    """Raised when a run was stopped by SIGINT/SIGTERM after saving its checkpoint."""

    def __init__(self, message: str, run_dir=None, epoch: int | None = None):
        super().__init__(message)
        self.run_dir = run_dir
        self.epoch = epoch


@contextmanager
def stop_on_signals():
    """Turn SIGINT/SIGTERM into a flag the training callback checks between chunks (so the
    run stops at a chunk boundary with a checkpoint). A second SIGINT stops at once with
    ``KeyboardInterrupt`` (no new checkpoint). Yields the flag: ``{"stop": None}``, then the
    signal's name."""
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


def check_fresh_run_dir(out: Path, checkpoint: str) -> None:
    """Refuse to start a new run in a folder that already holds one (its config.json or its
    ``checkpoint``, or the one before it): the two runs' files would be mixed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder")
    found = [n for n in ("config.json", checkpoint, previous_path(checkpoint).name)
             if (out / n).exists()]
    if found:
        raise ConfigError(f"output folder {out} already holds a run ({found[0]}); continue it with "
                          f"--resume {out} or choose another --out")


def new_run_dir(command: str, root="runs") -> Path:
    """``runs/<command>-<time>``, with ``-1``, ``-2``, ... when two commands start within the
    same second."""
    out = base = Path(root) / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
    i = 1
    while out.exists():
        out, i = base.with_name(f"{base.name}-{i}"), i + 1
    return out
