#!/usr/bin/env python
"""Scaling on forced CPU devices and across two processes (numbers for BENCHMARKS.md).

    python scripts/scaling.py [--quick] [--out scaling.json]   # raw results (bench_doc.py)

1. A 64-model sweep (digits, widths 16/32/64/128 x 4 learning rates x 4 seeds) with its model
   axis sharded over 1, 2, 4 and 8 devices (XLA_FLAGS=--xla_force_host_platform_device_count=8:
   8 "devices" that share this machine's cores).
2. Data-parallel training (teacher 20,000 x 64, 64-256-256-10, batch 512) over 1, 2, 4, 8 devices.
3. The same data-parallel run as two processes on 127.0.0.1 (jax.distributed, gloo) vs one.

Each measurement runs in its own child process; compile and run seconds are reported apart.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys

SWEEP = r"""
import json, sys
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.sweeps import sweep
n, epochs = int(sys.argv[1]), int(sys.argv[2])
s = load_splits(DataConfig(dataset="digits"))
r = sweep(s, model=ModelConfig(hidden=(128,)), train=TrainConfig(epochs=epochs, batch_size=128),
          grid={"width": [16, 32, 64, 128], "lr": [0.01, 0.03, 0.1, 0.3]}, seeds=4, n_devices=n)
print(json.dumps({"devices": n, "compile_s": r.info["compile_s"], "run_s": r.info["run_s"],
                  "total_s": r.info["total_s"], "mean_test_acc": sum(x["test_accuracy"] for x in r.rows) / 64}))
"""

DP = r"""
import json, sys, time
dist = len(sys.argv) > 3
if dist:
    from jaxmlp.parallel import DistributedConfig, initialize
    initialize(DistributedConfig(f"127.0.0.1:{sys.argv[4]}", 2, int(sys.argv[3])))
import jax, jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
n, epochs = int(sys.argv[1]), int(sys.argv[2])
s = load_splits(DataConfig(dataset="teacher", n_samples=20000))
p, h = jm.fit(s, model=ModelConfig(hidden=(256, 256)), train=TrainConfig(epochs=epochs, batch_size=512),
              devices=jax.device_count() if dist else n)
if jax.process_index() == 0:
    print(json.dumps({"devices": jax.device_count() if dist else n, "processes": jax.process_count(),
                      "compile_s": h["final"]["compile_s"], "train_s": h["final"]["train_s"],
                      "train_loss": h["final"]["train_loss"]}))
"""


def _child(code, args, env):
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"child failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="write every row (and the machine) as JSON")
    a = ap.parse_args(argv)
    rep = {"sweep": [], "data_parallel": []}
    sweep_epochs, dp_epochs = (3, 1) if a.quick else (50, 5)
    forced = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    plain = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    print(f"sweep of 64 models, digits, {sweep_epochs} epochs (model axis over forced CPU devices)")
    print(f"{'devices':>8} {'compile s':>10} {'run s':>8} {'total s':>8} {'mean test acc':>14}")
    for n in (1, 2, 4, 8):
        r = _child(SWEEP, [n, sweep_epochs], forced)
        rep["sweep"].append(r)
        print(f"{n:>8} {r['compile_s']:>10.2f} {r['run_s']:>8.2f} {r['total_s']:>8.2f} {r['mean_test_acc']:>14.4f}")
    print(f"\ndata-parallel fit, teacher 20,000 x 64, 64-256-256-10, batch 512, {dp_epochs} epochs")
    print(f"{'devices':>8} {'processes':>9} {'compile s':>10} {'train s':>8} {'train loss':>11}")
    for n in (1, 2, 4, 8):
        r = _child(DP, [n, dp_epochs], forced)
        rep["data_parallel"].append(r)
        print(f"{n:>8} {1:>9} {r['compile_s']:>10.2f} {r['train_s']:>8.2f} {r['train_loss']:>11.6f}")
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", DP, "2", str(dp_epochs), str(i), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plain)
             for i in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"2-process run failed: {outs[0][1][-1500:]}")
    r = json.loads(outs[0][0].strip().splitlines()[-1])
    print(f"{r['devices']:>8} {r['processes']:>9} {r['compile_s']:>10.2f} {r['train_s']:>8.2f} {r['train_loss']:>11.6f}")
    rep["data_parallel"].append(r)
    if a.out:
        import time

        from jaxmlp.bench.machine import machine_info
        rep["meta"] = {"argv": list(argv or sys.argv[1:]), "machine": machine_info(),
                       "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "sweep_epochs": sweep_epochs, "dp_epochs": dp_epochs}
        from jaxmlp.bench.raw import write_report
        write_report(a.out, rep)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
