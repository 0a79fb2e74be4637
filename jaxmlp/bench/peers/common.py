"""What every child runner shares: the task's arrays in, final weights out, timed calls."""
from __future__ import annotations

import time

import numpy as np


def load_task(task):
    """``(X, y, order or None, [(W, b), ...])`` from the task's ``.npz``."""
    with np.load(task["data"], allow_pickle=False) as z:
        arrs = {k: z[k] for k in z.files}
    n_layers = sum(1 for k in arrs if k.startswith("W"))
    params = [(arrs[f"W{i}"], arrs[f"b{i}"]) for i in range(n_layers)]
    return arrs["X"], arrs["y"], arrs.get("order"), params


def save_params(path, params):
    """Final weights as float32 ``W0, b0, W1, b1, ...`` in an ``.npz`` (read by the parent)."""
    np.savez(path, **{f"W{i}": np.asarray(W, np.float32) for i, (W, _) in enumerate(params)},
             **{f"b{i}": np.asarray(b, np.float32) for i, (_, b) in enumerate(params)})


def time_calls(fn, reps, min_time=0.2):
    """Median seconds per call after one warm-up call (which includes any compile)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50 * reps:
            break
    return {"first_call_s": first, "median_s": float(np.median(times)),
            "min_s": float(np.min(times)), "calls": len(times)}
