#!/usr/bin/env python
"""Where a sweep's time goes: W3's 64-model grid (digits train split, widths 16/32/64/128 x
4 learning rates x 4 seeds, 50 epochs, batch 128, no per-epoch evaluation), as the benchmark
runs it (BENCHMARKS.md, "W3").

    python scripts/profile_sweep.py          # wall time of each set-up part, compile, run
    python scripts/profile_sweep.py --ops    # also the XLA ops of one run, from a profiler trace
    python scripts/profile_sweep.py --short-run   # compile for a short run or not, 4 sweeps
    python scripts/profile_sweep.py --packing     # padded vs packed (auto, pack), 5 sweeps
    python scripts/profile_sweep.py --packing --cache   # the same with a warm compile cache
    python scripts/profile_sweep.py --packing --cli     # W3 as `jaxmlp sweep`: command wall time

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

from jaxmlp.bench.peers.sweep_runs import w3_splits, w3_sweep
from jaxmlp.bench.workloads import workload_configs
from jaxmlp.sweeps.plan import training_flops_estimate

S = importlib.import_module("jaxmlp.sweeps.api")  # sweep, metrics_executable (patched below)
SP = importlib.import_module("jaxmlp.sweeps.program")
W3 = workload_configs(quick=False)["W3"]


def timed(name, fn, log):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        jax.block_until_ready(out)
        log.append((name, time.perf_counter() - t0))
        return out
    return wrapper


def _short_run_cases():
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    from jaxmlp.data import load_splits
    full = load_splits(DataConfig(dataset="digits"))
    return {
        "W3: 64 x 64-{16..128}-10 tanh": (w3_splits(), dict(
            model=ModelConfig(hidden=(128,)), train=TrainConfig(epochs=50, batch_size=128),
            grid={"width": [16, 32, 64, 128], "lr": [0.01, 0.03, 0.1, 0.3]}, seeds=4)),
        "24 x 64-{64..512}-10 relu, T, batch 64, eval": (full, dict(
            model=ModelConfig(hidden=(512,), activation="relu"),
            train=TrainConfig(epochs=30, batch_size=64, patience=5),
            grid={"width": [64, 128, 256, 512], "temperature": [0.5, 1, 2]}, seeds=2)),
        "18 x 64-{32..128}x2-10 tanh, eval": (full, dict(
            model=ModelConfig(hidden=(128, 128)), train=TrainConfig(epochs=40, batch_size=128),
            grid={"width": [32, 64, 128], "lr": [0.03, 0.1]}, seeds=3)),
        "18 x 64-{32..128}x2-10 sigmoid, momentum, eval": (full, dict(
            model=ModelConfig(hidden=(128, 128), activation="sigmoid"),
            train=TrainConfig(epochs=40, batch_size=128, momentum=0.9),
            grid={"width": [32, 64, 128], "lr": [0.03, 0.1]}, seeds=3)),
    }


def _one_short_run_case(name, fast):
    """One sweep of ``_short_run_cases`` in this (fresh) process: JSON on stdout."""
    data, kw = _short_run_cases()[name]
    t0 = time.perf_counter()
    r = S.sweep(data, fast_compile=fast, packing="pad", **kw)
    total = time.perf_counter() - t0
    sizes = [data.n_features, *r.info["programs"][0]["padded_to"], data.n_outputs]
    flops = training_flops_estimate(sizes, len(data.X_train), kw["train"].epochs,
                                      r.info["n_models"])
    print(json.dumps({"total": total, "compile": r.info["compile_s"], "run": r.info["run_s"],
                      "flops": flops}))


def short_run_table(reps=2):
    """Four sweeps compiled for a short run (``fast_compile=True``: no XLA:CPU fusion emitters)
    and not, each in a fresh process (nothing cached), best total of ``reps``: the chunk's
    compile (background, wall) and run seconds, with each sweep's estimated training FLOPs
    (what ``sweep`` compares with ``SHORT_RUN_FLOPS`` by default)."""
    import subprocess
    import sys
    print("sweep | est. GFLOP | short run: total s (chunk compile, run) | optimised: the same")
    for name in _short_run_cases():
        cols = []
        for fast in ("1", "0"):
            runs = [json.loads(subprocess.run(
                [sys.executable, __file__, "--one", name, fast], check=True, capture_output=True,
                text=True).stdout.strip().splitlines()[-1]) for _ in range(reps)]
            b = min(runs, key=lambda r: r["total"])
            cols.append(f"{b['total']:.2f} ({b['compile']:.2f}, {b['run']:.2f})")
        print(f"  {name:48s} {b['flops'] / 1e9:5.0f} | {cols[0]} | {cols[1]}")


def _packing_cases():
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    from jaxmlp.data import load_splits
    full = load_splits(DataConfig(dataset="digits"))
    w3 = lambda widths, hidden=1, epochs=50: (w3_splits(), dict(
        model=ModelConfig(hidden=(128,) * hidden), train=TrainConfig(epochs=epochs, batch_size=128),
        grid={"width": list(widths), "lr": [0.03, 0.1, 0.3, 1.0]}, seeds=4))
    return {
        "W3: 64 x 64-{16..128}-10": w3((16, 32, 64, 128)),
        "W3, 200 epochs": w3((16, 32, 64, 128), epochs=200),
        "64 x 64-{16..128}x2-10": w3((16, 32, 64, 128), hidden=2),
        "32 x 64-{32,256}-10": w3((32, 256)),
        "36 x car_sensor 8-{8..64}-2 mse, eval": (load_splits(DataConfig(dataset="car_sensor")), dict(
            model=ModelConfig(hidden=(64,)), train=TrainConfig(epochs=30, batch_size=128),
            grid={"width": [8, 16, 32, 64], "lr": [0.03, 0.1, 0.3]}, seeds=3)),
        "24 x 64-{32..256}-10 relu, T, eval": (full, dict(
            model=ModelConfig(hidden=(256,), activation="relu"),
            train=TrainConfig(epochs=30, batch_size=64, patience=5),
            grid={"width": [32, 64, 128, 256], "temperature": [0.5, 1, 2]}, seeds=2)),
    }


W3_CLI = ["sweep", "--dataset", "digits", "--width", "16,32,64,128", "--lr", "0.03,0.1,0.3,1",
          "--seeds", "4", "--epochs", "50", "--quiet"]


def _one_packing_case(name, packing, cache):
    """One sweep of ``_packing_cases`` in this (fresh) process: JSON on stdout."""
    if cache:
        from jaxmlp.training.compile_cache import use_compile_cache
        use_compile_cache(cache)
    data, kw = _packing_cases()[name]
    t0 = time.perf_counter()
    r = S.sweep(data, packing=packing, **kw)
    total = time.perf_counter() - t0
    print(json.dumps({"total": total, "compile": r.info["compile_s"], "run": r.info["run_s"],
                      "plan": r.info["packing"]["plan"], "eff": r.info["flop_efficiency"]}))


def packing_table(reps=3, cache=False, cli=False, only=""):
    """Each sweep of ``_packing_cases`` padded, ``auto`` and packed (one group per width), in a
    fresh process per run, the three interleaved; median [min-max] of ``reps`` runs: the
    ``sweep`` call's total (compile, run) seconds. ``cache``: every process uses a compile
    cache warmed by one untimed run first. ``cli``: W3 only, the wall time of the whole
    ``python -m jaxmlp.cli sweep`` command (one host device per core, as users run it);
    ``only``: the cases whose name holds this text."""
    import statistics
    import subprocess
    import sys
    fmt = lambda xs: f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"
    packings = ("pad", "auto", "pack")
    cases = ["W3 as `jaxmlp sweep`"] if cli else [c for c in _packing_cases() if only in c]
    with tempfile.TemporaryDirectory() as tmp:
        def once(name, packing, i):
            if cli:
                extra = ["--compile-cache", f"{tmp}/cli-cache-{packing}"] if cache else []
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "jaxmlp.cli", *W3_CLI, "--packing", packing,
                                "--out", f"{tmp}/{packing}{i}", *extra], check=True,
                               capture_output=True)
                res = json.load(open(f"{tmp}/{packing}{i}/results.json"))["info"]
                return {"total": time.perf_counter() - t0, "compile": res["compile_s"],
                        "run": res["run_s"], "plan": res["packing"]["plan"],
                        "eff": res["flop_efficiency"]}
            cdir = f"{tmp}/cache-{abs(hash((name, packing)))}" if cache else ""
            out = subprocess.run([sys.executable, __file__, "--one-packing", name, packing, cdir],
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out.strip().splitlines()[-1])
        if cache:
            for name in cases:
                for packing in packings:
                    once(name, packing, -1)
        runs = {(n, p): [] for n in cases for p in packings}
        for i in range(reps):
            for name in cases:
                for packing in packings:
                    runs[name, packing].append(once(name, packing, i))
    what = "command wall s" if cli else "total s"
    print(f"sweep | packing: plan, FLOP efficiency | {what} | compile s | run s")
    for (name, packing), rs in runs.items():
        print(f"  {name:40s} {packing:4s}: {rs[0]['plan']}, {rs[0]['eff']:.2f} | "
              f"{fmt([r['total'] for r in rs])} | {fmt([r['compile'] for r in rs])} | "
              f"{fmt([r['run'] for r in rs])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", action="store_true", help="per-op profile of a second run")
    ap.add_argument("--top", type=int, default=20, help="ops to list with --ops")
    ap.add_argument("--short-run", action="store_true",
                    help="only the table of sweeps compiled for a short run or not")
    ap.add_argument("--packing", action="store_true",
                    help="only the table of sweeps padded and packed (fresh processes)")
    ap.add_argument("--cache", action="store_true", help="--packing with a warm compile cache")
    ap.add_argument("--cli", action="store_true", help="--packing: W3 as the CLI command")
    ap.add_argument("--reps", type=int, default=3, help="--packing: runs of each")
    ap.add_argument("--only", default="", help="--packing: the cases whose name holds this")
    ap.add_argument("--one", nargs=2, metavar=("CASE", "FAST"), help=argparse.SUPPRESS)
    ap.add_argument("--one-packing", nargs=3, metavar=("CASE", "PACKING", "CACHE"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return _one_short_run_case(args.one[0], args.one[1] == "1")
    if args.one_packing:
        return _one_packing_case(*args.one_packing)
    if args.short_run:
        return short_run_table()
    if args.packing:
        return packing_table(args.reps, args.cache, args.cli, args.only)
    sp = w3_splits()

    log: list = []
    init_jit = SP.init_states_jit
    SP.init_states_jit = lambda: timed("initialisation (compile + run)", init_jit(), log)
    S.metrics_executable = timed("final metrics: lower + compile (background)",
                                 S.metrics_executable, log)
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
