"""Where a command's wall time goes: phases timed on the host, compiles counted from JAX's own
monitoring events (tracing, lowering, XLA compile or persistent-cache load of every program).

``jaxmlp train`` / ``jaxmlp sweep`` write the record as ``timing.json``, last thing before
exiting, with the keys ``import_s`` (from the start of ``jaxmlp.cli`` until JAX and its
backend are up), ``data_s``, ``compile_s`` (summed over threads: compiles overlap each other
and the set-up), ``train_s`` (the training loop as the run reports it, compiles excluded),
``write_s`` (metrics, checkpoints, summary), ``plot_s`` (the wait for the figures a worker
process draws), ``total_s`` (start of ``jaxmlp.cli`` to the end; the interpreter's own
start-up comes before it), ``programs`` (executables built), ``cache_hits`` (of those, loaded
from the persistent compile cache or from ``jaxmlp.training.aot_cache`` without tracing) and
``compiled`` (the rest: compiled by XLA). ``jaxmlp bench --e2e`` reads it for its breakdown.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# JAX's duration events for the stages of turning a function into an executable.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_BACKEND = COMPILE_EVENTS[2]
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
AOT_LOAD_EVENT = "/jaxmlp/aot_cache/load_duration"  # jaxmlp.training.aot_cache: loaded without tracing


class Clock:
    """Phase wall times plus the seconds JAX spent compiling (summed over threads: a sweep
    compiles in the background while it sets up, so ``compile_s`` may overlap other phases).
    """

    def __init__(self, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.phases: dict[str, float] = {}
        self.compile_s = 0.0
        self.compiles = 0
        self.cache_hits = 0
        self.trained: float | None = None  # the training loop's own seconds, when reported
        self._lock = threading.Lock()
        self._listening = False

    def listen(self) -> None:
        """Count JAX's compile events from now on (imports jax: call once JAX is wanted)."""
        if self._listening:
            return
        from jax import monitoring

        def on_event(event: str, duration: float, **_kw) -> None:
            if event in COMPILE_EVENTS or event == AOT_LOAD_EVENT:
                with self._lock:
                    self.compile_s += duration
                    self.compiles += event in (_BACKEND, AOT_LOAD_EVENT)
                    self.cache_hits += event == AOT_LOAD_EVENT
        def on_count(event: str, **_kw) -> None:
            if event == CACHE_HIT_EVENT:
                with self._lock:
                    self.cache_hits += 1
        monitoring.register_event_duration_secs_listener(on_event)
        monitoring.register_event_listener(on_count)
        self._listening = True

    @contextmanager
    def phase(self, name: str):
        """Time the block as phase ``name`` (times add up when a phase repeats)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    def record(self) -> dict:
        """The ``timing.json`` dict (see the module docstring)."""
        p = self.phases
        return {"import_s": p.get("import", 0.0), "data_s": p.get("data", 0.0),
                "compile_s": self.compile_s, "programs": self.compiles,
                "compiled": self.compiles - self.cache_hits, "cache_hits": self.cache_hits,
                "train_s": p.get("train", 0.0) if self.trained is None else self.trained,
                "write_s": p.get("write", 0.0), "plot_s": p.get("plot", 0.0),
                "total_s": time.perf_counter() - self.start}

    def write(self, folder) -> None:
        """Write ``record()`` as ``folder/timing.json`` (the last file a command writes)."""
        from jaxmlp.atomic import atomic_write_text
        atomic_write_text(Path(folder) / "timing.json",
                          json.dumps(self.record(), indent=2, sort_keys=True) + "\n")
