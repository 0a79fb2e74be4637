"""A command's figures, drawn off its critical path.

Importing matplotlib and drawing a run's curves takes ~0.4 s, as long as half of a whole warm
``jaxmlp train``. With more than one core, a command starts a worker process first thing
(``jaxmlp/runs/plots.py`` run as a script: it imports matplotlib while the command imports JAX,
compiles and trains) and sends it each figure as soon as the data exist; the command writes its
other files meanwhile and prints its result, then collects the PNGs and writes them before it
exits. Any failure of the worker (none started, a crash, a figure it could not draw) falls
back to drawing in this process, so a figure is never lost. On one core, or with
``JAXMLP_PLOT_WORKER=0``, figures are drawn here, after the result is printed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLOTS_SCRIPT = Path(__file__).with_name("plots.py")
# Requests above this size are drawn here: the worker's replies are only read at the end, so
# all requests must fit in the pipe (64 KiB on Linux) without it reading them.
MAX_REQUEST_BYTES = 32_000


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_wanted() -> bool:
    return _cores() > 1 and os.environ.get("JAXMLP_PLOT_WORKER", "1") != "0"


class Plotter:
    """Queue figures with ``submit``; ``finish`` writes them all (atomically)."""

    def __init__(self, worker: bool | None = None):
        self.jobs: list[tuple[Path, str, dict, bool]] = []   # path, function, kwargs, sent
        self.proc = None
        self._sent_bytes = 0
        if worker_wanted() if worker is None else worker:
            try:  # -P: the script's folder (this package) is not put on sys.path
                self.proc = subprocess.Popen([sys.executable, "-P", str(PLOTS_SCRIPT), "--serve"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)
            except OSError:
                self.proc = None

    def submit(self, path, fn: str, **kwargs) -> None:
        """Draw ``jaxmlp.runs.plots.<fn>(**kwargs)`` (JSON-able arguments) into ``path``."""
        sent = False
        if self.proc is not None:
            line = (json.dumps({"fn": fn, "kwargs": kwargs}) + "\n").encode()
            if self._sent_bytes + len(line) <= MAX_REQUEST_BYTES:
                try:
                    self.proc.stdin.write(line)
                    self.proc.stdin.flush()
                    sent = True
                    self._sent_bytes += len(line)
                except OSError:
                    self.close()
        self.jobs.append((Path(path), fn, kwargs, sent))

    def finish(self) -> None:
        """Collect or draw every queued figure and write it; stop the worker."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        from jaxmlp.atomic import atomic_write_bytes
        for path, fn, kwargs, sent in self.jobs:
            png = self._reply() if sent else b""
            if not png:
                from jaxmlp.runs import plots
                png = plots.FIGURES[fn](**kwargs)
            atomic_write_bytes(path, png)
        self.jobs = []
        self.close()

    def _reply(self) -> bytes:
        if self.proc is None:
            return b""
        try:
            head = self.proc.stdout.readline()
            n = int(head) if head.strip() else 0
            data = self.proc.stdout.read(n) if n else b""
            return data if len(data) == n else b""
        except (OSError, ValueError):
            self.close()
            return b""

    def close(self) -> None:
        """Stop the worker (figures not yet collected are dropped: ``finish`` collects)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
