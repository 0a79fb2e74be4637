#!/usr/bin/env python
"""What in-chunk step reports (``fit(log_every=...)``, ``jaxmlp train --log-every``) cost.

    python scripts/steplog_cost.py --out docs/bench/steplog_<commit>.json   # ~5 min, 2 cores
    python scripts/steplog_cost.py --quick --out /tmp/steplog.json           # a smoke test

W1, W2 and W4 of the benchmark (``jaxmlp.bench.workloads``), each trained with ``jaxmlp.fit``
without reports, with "auto" reports (about 4 a second, the interval re-timed after each
chunk) and with a report every step (the worst case). Every variant gets one untimed warm-up
fit (its program compiled), then the variants alternate for ``--rounds`` rounds; train
seconds from ``history["final"]["train_s"]``. The params of every variant are checked
bit-identical to the run without reports. W3 (a sweep) has no in-chunk reports: sweeps show
progress per chunk.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAXMLP_COMPILE_CACHE", "off")

import numpy as np  # noqa: E402

MODES = {"off": None, "auto": "auto", "every step": 1}


def one(name, cfg, X, y, log_every):
    import jax

    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig
    params, h = jaxmlp.fit((X, y), model=ModelConfig(hidden=tuple(cfg["hidden"])),
                           train=TrainConfig(lr=cfg["lr"], batch_size=cfg["batch_size"],
                                             epochs=cfg["epochs"], seed=cfg["seed"]),
                           log_every=log_every)
    leaves = [np.asarray(a) for a in jax.tree.leaves(params)]
    return h["final"]["train_s"], len(h.get("steps", {}).get("step", [])), leaves


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="W1,W2,W4", help="comma list of workloads")
    a = p.parse_args(argv)
    from jaxmlp.bench.machine import machine_info
    from jaxmlp.bench.workloads import load_data, workload_configs
    cfgs = workload_configs(a.quick)
    rep = {"meta": {"argv": list(argv or sys.argv[1:]), "machine": machine_info(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rounds": a.rounds,
                    "doc": __doc__.strip()}, "rows": []}
    for name in a.only.split(","):
        cfg = cfgs[name]
        X, y = load_data(cfg)
        base = {}
        for mode, le in MODES.items():  # untimed warm-up: every program compiled
            base[mode] = one(name, cfg, X, y, le)[2]
        same = {m: all(np.array_equal(u, v) for u, v in zip(base["off"], base[m])) for m in MODES}
        times = {m: [] for m in MODES}
        reports = {}
        for _ in range(a.rounds):
            for mode, le in MODES.items():
                t, n, _ = one(name, cfg, X, y, le)
                times[mode].append(t)
                reports[mode] = n
        rep["rows"].append({"workload": name, "name": cfg["name"], "train_s": times,
                            "reports": reports, "bit_identical": same})
        print(name, {m: f"{np.median(v):.4f}" for m, v in times.items()}, reports, same,
              flush=True)
    from jaxmlp.bench.raw import write_report
    write_report(a.out, rep)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
