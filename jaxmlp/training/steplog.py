"""Progress from inside a compiled chunk, without a per-step host sync.

A chunk runs thousands of steps in one compiled call; the host hears of it only when the
chunk returns. With ``Spec.step_log`` one host callback (``jax.debug.callback``) hands
``(step, loss)`` to whoever listens in this process (``listening``) each time the step count
passes a multiple of ``hp["log_every"]`` (a traced value: changing it recompiles nothing):

- "step" level: the test runs after every optimizer step and reports that step's mini-batch
  loss (about a microsecond a step: what steps of a millisecond do not notice);
- "epoch" level: the test runs after every epoch and reports the epoch's train loss at its
  last step (for small models, whose steps take microseconds and whose chunks hold many
  epochs).

The callback only observes: the train state it runs beside is exactly the state without it.

An executable holding a host callback cannot be stored on disk and loaded by a later process
(the callback is a pointer into this one), so step-logging programs are compiled per process
and never put in the ahead-of-time cache.
"""
from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp

_LOCK = threading.Lock()
_LISTENER: list = [None]


def _emit(step, loss) -> None:
    """The host side of the callback: the current listener gets ``(step, loss)``."""
    with _LOCK:
        fn = _LISTENER[0]
    if fn is not None:
        fn(int(step), float(loss))


@contextlib.contextmanager
def listening(fn):
    """Route the step reports of chunks run inside this block to ``fn(step, loss)`` (called
    from XLA's thread while a chunk runs)."""
    with _LOCK:
        saved, _LISTENER[0] = _LISTENER[0], fn
    try:
        yield
    finally:
        with _LOCK:
            _LISTENER[0] = saved


def record(every, step, loss) -> None:
    """Traced, once per optimizer step: when ``step`` (the step count after the update) is a
    multiple of ``every``, report ``(step, loss)`` to the host."""
    due = step % jnp.maximum(every, 1) == 0
    jax.lax.cond(due, lambda: jax.debug.callback(_emit, step, loss), lambda: None)


def record_epoch(every, first, last, loss) -> None:
    """Traced, once per epoch: when the step count passed a multiple of ``every`` during the
    epoch (from ``first`` to ``last``), report ``(last, the epoch's loss)`` to the host."""
    k = jnp.maximum(every, 1)
    due = last // k > first // k
    jax.lax.cond(due, lambda: jax.debug.callback(_emit, last, loss), lambda: None)


#: Reports a second that ``auto_every`` aims for.
REPORTS_PER_S = 4.0
#: Assumed training throughput (FLOP/s) before a chunk has been timed: the fast end of a CPU
#: (a 2-core AMD EPYC trains W2's 784-512-512-10 at ~3e11), so a first guess errs towards
#: fewer reports and fewer runs counted long.
ASSUMED_FLOPS_PER_S = 2e11
#: "auto" reports at the "step" level when a step is estimated to take at least this long,
#: else at the "epoch" level (a test per step costs ~0.6 us: 5% of W4's 13 us steps).
STEP_LEVEL_MIN_S = 1e-4
#: ``log_every="long"`` reports only for runs estimated to train at least this long: a
#: step-reporting program misses the compile cache, ~1 s of compile a run on a 2-core CPU.
LONG_RUN_S = 30.0


def level(log_every, step_flops: float) -> str:
    """The report level for ``log_every``: a number of steps reports per step, "auto" per
    step or per epoch by the estimated step time (``STEP_LEVEL_MIN_S``)."""
    if log_every != "auto":
        return "step"
    return "step" if step_flops / ASSUMED_FLOPS_PER_S >= STEP_LEVEL_MIN_S else "epoch"


def is_long(run_flops: float) -> bool:
    """Whether a run of ``run_flops`` estimated training FLOPs counts as long (``LONG_RUN_S``)."""
    return run_flops / ASSUMED_FLOPS_PER_S >= LONG_RUN_S


def auto_every(step_s: float) -> int:
    """Steps between reports for about ``REPORTS_PER_S`` reports a second at ``step_s`` seconds
    a step (at least 1)."""
    if not step_s > 0:
        return 1
    return int(min(max(1, round(1.0 / (REPORTS_PER_S * step_s))), 2**30))
