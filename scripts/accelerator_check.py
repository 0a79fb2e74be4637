#!/usr/bin/env python
"""The first minutes on a GPU/TPU machine, prepared: what jaxmlp does there, as one JSON report.

    python scripts/accelerator_check.py --out report.json [--quick] [--skip-tests]

(``scripts/accelerator_check.sh`` runs it from a checkout with the machine's own JAX.) Parts,
each timed and recorded even when another fails:

1. ``env``: JAX version, backend, devices; the matmul precision default.
2. ``tests``: a core subset of the test suite (maths, training, backprop, sweeps) on the
   accelerator, at ``JAX_DEFAULT_MATMUL_PRECISION=highest`` as the suite sets it.
3. ``w2``: W2 (teacher 200,000 x 784, 784-512-512-10 tanh, batch 128, one epoch) and a
   GPU-sized variant (batch 4096, 2048-wide) in float32 and bfloat16 compute, at the default
   and the highest matmul precision: compile and train seconds, final loss.
4. ``data_parallel``: the GPU-sized run over 1, 2, 4, ... of the devices present.
5. ``sweep``: 1,000 models (5 widths x 10 learning rates x 20 seeds) on digits in one call.

``--quick`` shrinks every size (a smoke test on a CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

TEST_FILES = ["tests/test_nn.py", "tests/test_losses.py", "tests/test_backprop.py",
              "tests/test_train.py", "tests/test_sweep.py"]


def env_part() -> dict:
    import jax
    return {"jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [d.device_kind for d in jax.devices()],
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision)}


def tests_part(quick: bool, timeout: int) -> dict:
    files = TEST_FILES[:1] if quick else TEST_FILES
    env = dict(os.environ, JAX_DEFAULT_MATMUL_PRECISION="highest")
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            *files], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:  # its output so far may come back as bytes
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        rc = "timeout"
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|error|skipped)", out)}
    failed = re.findall(r"^FAILED (\S+)", out, re.M)
    return {"files": files, "rc": rc, "counts": counts, "failed": failed[:50],
            "seconds": time.perf_counter() - t, "tail": out[-3000:]}


def _timed_fit(X, y, hidden, train, devices=None) -> dict:
    """One ``jaxmlp.fit``: compile, train and whole-call seconds, samples/s, final loss."""
    import jaxmlp as jm
    from jaxmlp.config import ModelConfig
    t = time.perf_counter()
    _, h = jm.fit((X, y), model=ModelConfig(hidden=hidden), train=train, devices=devices)
    f = h["final"]
    return {"compile_s": f["compile_s"], "train_s": f["train_s"],
            "wall_s": time.perf_counter() - t, "samples_per_s": f["samples_per_s"],
            "train_loss": float(h["train_loss"][-1])}


def w2_part(quick: bool) -> dict:
    from jaxmlp.config import TrainConfig
    from jaxmlp.data import make_teacher
    n = 5_000 if quick else 200_000
    ds = make_teacher(n, 784, 10)
    rows = []
    for name, hidden, batch, epochs in (("W2", (512, 512), 128, 1),
                                        ("W2-gpu", (256, 256) if quick else (2048, 2048), 4096, 3)):
        for dtype in ("float32", "bfloat16"):
            for precision in ("default", "highest"):
                train = TrainConfig(batch_size=batch, lr=0.1, epochs=epochs, compute_dtype=dtype,
                                    matmul_precision=precision)
                rows.append({"run": name, "hidden": hidden, "batch": batch, "epochs": epochs,
                             "compute_dtype": dtype, "matmul_precision": precision,
                             **_timed_fit(ds.X, ds.y, hidden, train)})
                print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "n_rows": n}


def data_parallel_part(quick: bool) -> dict:
    import jax

    from jaxmlp.config import TrainConfig
    from jaxmlp.data import make_teacher
    ds = make_teacher(20_000 if quick else 1_000_000, 784, 10)
    hidden = (256, 256) if quick else (2048, 2048)
    rows = []
    for n in [n for n in (1, 2, 4, 8, 16) if n <= len(jax.devices())]:
        train = TrainConfig(batch_size=4096, lr=0.1, epochs=2)
        rows.append({"devices": n, **_timed_fit(ds.X, ds.y, hidden, train, devices=n)})
        print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def sweep_part(quick: bool) -> dict:
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    from jaxmlp.data import load_splits
    from jaxmlp.sweeps import sweep
    s = load_splits(DataConfig(dataset="digits"))
    widths = [32, 64] if quick else [32, 64, 128, 256, 512]
    lrs = [0.03, 0.1] if quick else [0.01 * 1.5 ** i for i in range(10)]
    seeds = 2 if quick else 20
    t = time.perf_counter()
    r = sweep(s, model=ModelConfig(hidden=(64,)), train=TrainConfig(epochs=2 if quick else 20),
              grid={"width": widths, "lr": lrs}, seeds=seeds)
    accs = [row["test_accuracy"] for row in r.rows]
    return {"models": len(r.rows), "wall_s": time.perf_counter() - t,
            "compile_s": r.info["compile_s"], "run_s": r.info["run_s"],
            "strategy": r.info["strategy"], "programs": len(r.info["programs"]),
            "best_test_accuracy": max(accs), "mean_test_accuracy": sum(accs) / len(accs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the JSON report")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test on a CPU")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--test-timeout", type=int, default=150, help="seconds for the test subset")
    a = ap.parse_args(argv)
    report = {"argv": list(argv if argv is not None else sys.argv[1:]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    parts = [("env", env_part), ("w2", lambda: w2_part(a.quick)),
             ("data_parallel", lambda: data_parallel_part(a.quick)),
             ("sweep", lambda: sweep_part(a.quick))]
    if not a.skip_tests:
        parts.insert(1, ("tests", lambda: tests_part(a.quick, a.test_timeout)))
    for name, part in parts:
        t = time.perf_counter()
        try:
            report[name] = part()
        except Exception:  # a report of what failed is the point: keep going
            report[name] = {"error": traceback.format_exc()[-3000:]}
        report[name]["part_s"] = time.perf_counter() - t
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
        from jaxmlp.bench.raw import write_report
        write_report(a.out, report, default=str)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
