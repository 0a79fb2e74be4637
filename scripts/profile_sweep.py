#!/usr/bin/env python
"""Where a sweep's time goes: W3's 64-model grid (digits train split, widths 16/32/64/128 x
4 learning rates x 4 seeds, 50 epochs, batch 128, no per-epoch evaluation), as the benchmark
runs it (BENCHMARKS.md, "W3").

    python scripts/profile_sweep.py          # wall time of each set-up part, compile, run
    python scripts/profile_sweep.py --ops    # also the XLA ops of one run, from a profiler trace

The set-up parts overlap (the training chunk compiles in a background thread), so their
seconds add up to more than the total. ``--ops`` runs the sweep a second time in the same
process (every program cached) under ``jax.profiler`` and sums the trace's events per XLA op
(microseconds per training step); ops that run concurrently each count their own wall time.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import importlib
import json
import tempfile
import time

import jax

from jaxmlp.bench import workload_configs
from jaxmlp.bench_peers import w3_splits, w3_sweep

S = importlib.import_module("jaxmlp.sweep")
W3 = workload_configs(quick=False)["W3"]


def timed(name, fn, log):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        jax.block_until_ready(out)
        log.append((name, time.perf_counter() - t0))
        return out
    return wrapper


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", action="store_true", help="per-op profile of a second run")
    ap.add_argument("--top", type=int, default=20, help="ops to list with --ops")
    args = ap.parse_args()
    sp = w3_splits()

    log: list = []
    init_jit = S._init_states_jit
    S._init_states_jit = lambda: timed("initialisation (compile + run)", init_jit(), log)
    S._metrics_executable = timed("final metrics: lower + compile (background)",
                                  S._metrics_executable, log)
    t0 = time.perf_counter()
    res = w3_sweep(W3, sp)
    total = time.perf_counter() - t0
    info = res.info
    # the chunk is traced here and compiled in the background: its time is info["compile_s"]
    log.append(("training chunk: trace + compile (background)", info["compile_s"]))
    for name, s in log:
        print(f"  {name:48s} {s:6.3f} s")
    print(f"sweep total {total:.3f} s: compile {info['compile_s']:.3f} s, run {info['run_s']:.3f} s, "
          f"strategy {info['strategy']}, models per data order "
          f"{info['programs'][0]['models_per_order']}, streams {info['programs'][0]['streams']}, "
          f"compiled for a short run: {info['programs'][0]['short_run']}")
    if not args.ops:
        return
    steps = W3["epochs"] * -(-sp.X_train.shape[0] // W3["batch_size"])
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d, create_perfetto_trace=True)
        w3_sweep(W3, sp)
        jax.profiler.stop_trace()
        trace = sorted(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True))[-1]
        with gzip.open(trace) as f:
            events = json.load(f)["traceEvents"]
    per_op: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("$", "ThunkExecutor", "np.", "while", "cond")):
            per_op[name] += e["dur"]
    print(f"\nXLA ops of the second run, us per training step ({steps} steps):")
    for name, us in per_op.most_common(args.top):
        print(f"  {us / steps:8.1f}  {name}")


if __name__ == "__main__":
    main()
