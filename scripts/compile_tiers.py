#!/usr/bin/env python
"""Does ``fit``'s quick-compile rule (``compiles_quick``) pick the faster program?

    python scripts/compile_tiers.py --out docs/bench/compile_tiers_<commit>.json   # ~5 min
    python scripts/compile_tiers.py --quick --out /tmp/ct.json                    # a smoke test

A fit's training chunk compiles either at XLA:CPU's usual options (``CPU_COMPILER_OPTIONS``:
-O1 with the fusion emitters) or quick (``CPU_ONCE_OPTIONS``: -O0 without them; less compile,
slower elementwise kernels). For each shape (random classification data: ``n`` training rows,
``n/8`` validation and ``n/4`` test rows) ``jaxmlp.fit`` runs both ways (``fast_compile``
False and True), interleaved for ``--rounds`` rounds, in one process after an untimed fit of
another shape (the process's one-time compile costs), with the compile cache off and the
program caches cleared before every fit: each time to a trained model is compile + train as
``fit`` reports them. The rule picks right when its choice's median is at most the other's,
or within the two runs' spread (max - min of each way's rounds) of it. Shapes are chosen
on both sides of the rule's bound and are not the benchmarks' (no digits, no W1-W4).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ["JAXMLP_COMPILE_CACHE"] = "off"

import numpy as np  # noqa: E402

# (inputs, hidden widths, training rows, epochs, batch): elementwise work ~2e6 to ~3e8 values
SHAPES = [(8, (32,), 5000, 10, 32), (16, (64, 64), 3000, 20, 64), (32, (256,), 2000, 30, 128),
          (64, (512,), 3000, 10, 256), (100, (128, 128, 128), 4000, 15, 100),
          (20, (16,), 20000, 40, 50), (300, (1024,), 2000, 5, 128), (784, (256,), 6000, 5, 64),
          (64, (2048,), 1500, 10, 128), (12, (96, 48), 8000, 60, 32), (50, (200,), 10000, 25, 200),
          (128, (64,) * 4, 5000, 40, 128), (40, (300, 300), 6000, 30, 512),
          (10, (10,), 1000, 200, 16), (256, (128,), 30000, 8, 1024), (64, (48,), 50000, 20, 64)]
# a second, held-out set (``--shapes held-out``): measured after the rule was fitted on SHAPES
HELD_OUT = [(24, (48,), 12000, 60, 64), (200, (512, 256), 3000, 16, 128),
            (6, (24, 24), 20000, 15, 32), (512, (64,), 5000, 10, 100),
            (64, (1536,), 2500, 24, 256), (32, (32, 32, 32), 10000, 25, 128),
            (90, (180,), 8000, 20, 40), (150, (700,), 4000, 4, 512), (16, (128,), 6000, 100, 256),
            (48, (96, 96), 3000, 60, 64), (400, (400,), 3000, 6, 32), (30, (8,), 40000, 40, 128),
            (128, (1024, 512), 2000, 4, 64), (20, (40,), 15000, 25, 25)]
# a third set (``--shapes held-out-2``): measured after the rule was re-fitted with its four
# kinds of work (the held-out set showed input gathers missing from the estimate)
HELD_OUT_2 = [(40, (12,), 30000, 45, 128), (300, (300, 300), 2500, 10, 64),
              (8, (200,), 10000, 30, 50), (700, (128,), 4000, 8, 256),
              (20, (20, 20, 20), 12000, 20, 64), (64, (800,), 3000, 10, 32),
              (100, (50,), 20000, 25, 200), (250, (2000,), 1500, 5, 128),
              (12, (60,), 25000, 30, 100), (60, (240, 120), 5000, 35, 128),
              (500, (32,), 8000, 20, 64), (16, (16,), 60000, 10, 256),
              (80, (640,), 2000, 30, 512), (36, (144,), 10000, 40, 96)]
QUICK_SHAPES = [(8, (16,), 500, 2, 32), (32, (64,), 800, 2, 64)]
N_OUT = 10


def splits(d_in: int, n: int, seed: int = 0):
    from jaxmlp.data import Splits
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((d_in, N_OUT)) / np.sqrt(d_in)

    def part(m):  # labels: the argmax of a random linear map, with noise
        X = rng.standard_normal((m, d_in)).astype(np.float32)
        scores = X @ proj + 0.5 * rng.standard_normal((m, N_OUT))
        return X, np.argmax(scores, 1).astype(np.int32)
    (Xt, yt), (Xv, yv), (Xs, ys) = part(n), part(n // 8), part(n // 4)
    return Splits(Xt, yt, Xv, yv, Xs, ys, task="classification", n_classes=N_OUT,
                  name=f"random{d_in}", x_mean=np.zeros(d_in, np.float32),
                  x_std=np.ones(d_in, np.float32))


def one_fit(data, hidden, epochs, batch, quick: bool) -> dict:
    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig
    from jaxmlp.training import compile as comp
    comp._EXECUTABLES.cache_clear()
    comp.jit_chunk.cache_clear()
    _, h = jaxmlp.fit(data, model=ModelConfig(hidden=tuple(hidden)),
                      train=TrainConfig(lr=0.05, batch_size=batch, epochs=epochs),
                      fast_compile=quick)
    f = h["final"]
    return {"compile_s": f["compile_s"], "train_s": f["train_s"],
            "total_s": f["compile_s"] + f["train_s"], "test_loss": f["test_loss"]}


def score(row: dict) -> dict:
    """``row`` (one shape's measurements) with the current rule's pick and its verdicts."""
    from jaxmlp.nn import elementwise_counts
    from jaxmlp.training.compile import compiles_quick, quick_extra_s
    n, epochs = row["n_train"], row["epochs"]
    steps = -(-n // row["batch"]) * epochs
    counts = elementwise_counts([row["inputs"], *row["hidden"], N_OUT], n, n // 8 + n // 4,
                                epochs, steps)
    med = {w: float(np.median([x["total_s"] for x in v])) for w, v in row["runs"].items()}
    spread = max(max(x["total_s"] for x in v) - min(x["total_s"] for x in v)
                 for v in row["runs"].values())
    pick = "quick" if compiles_quick(counts) else "full"
    other = "full" if pick == "quick" else "quick"
    return {**row, "counts": counts, "extra_estimate_s": quick_extra_s(counts), "rule": pick,
            "median_s": med,
            "spread_s": spread, "faster": min(med, key=med.get),
            "separable": abs(med["full"] - med["quick"]) > spread,
            "rule_right": med[pick] <= med[other] + spread,
            "rule_strictly_right": med[pick] <= med[other]}


def measure(shape, rounds: int) -> dict:
    d_in, hidden, n, epochs, batch = shape
    data = splits(d_in, n)
    runs = {"full": [], "quick": []}
    for r in range(rounds):
        for way in (("full", "quick") if r % 2 == 0 else ("quick", "full")):
            runs[way].append(one_fit(data, hidden, epochs, batch, way == "quick"))
    return score({"inputs": d_in, "hidden": list(hidden), "n_train": n, "epochs": epochs,
                  "batch": batch, "runs": runs})


def current_rule() -> dict:
    from jaxmlp.training import compile as comp
    return {"QUICK_COSTS_S": comp.QUICK_COSTS_S, "QUICK_SAVING_S": comp.QUICK_SAVING_S}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shapes", choices=("tuning", "held-out", "held-out-2"), default="tuning",
                   help="the shapes the rule was fitted on, or a held-out set")
    p.add_argument("--quick", action="store_true", help="two tiny shapes, two rounds")
    p.add_argument("--rescore", metavar="JSON",
                   help="no measuring: score an earlier run's measurements with the current rule")
    a = p.parse_args(argv)
    from jaxmlp.bench.raw import write_report
    if a.rescore:
        with open(a.rescore) as f:
            rep = json.load(f)
        keep = ("rule", "rule_right", "rule_strictly_right")
        rep["shapes"] = [{**score(r), "measured_rule": r.get("measured_rule")
                          or {k: r[k] for k in keep}} for r in rep["shapes"]]
        first = rep["meta"].get("rescored", {}).get("measured_with") or rep["meta"].get("rule")
        rep["meta"]["rescored"] = {"argv": list(argv or sys.argv[1:]), "measured_with": first}
        rep["meta"]["rule"] = current_rule()
        write_report(a.out, rep)
        print(f"rule right on {sum(r['rule_right'] for r in rep['shapes'])}/"
              f"{len(rep['shapes'])} shapes -> {a.out}")
        return 0
    from jaxmlp.bench.machine import machine_info
    shapes, rounds = ((QUICK_SHAPES, 2) if a.quick
                      else ({"tuning": SHAPES, "held-out": HELD_OUT,
                             "held-out-2": HELD_OUT_2}[a.shapes], a.rounds))
    one_fit(splits(16, 300, seed=1), (8,), 1, 32, False)  # untimed: one-time compile costs
    one_fit(splits(16, 300, seed=1), (8,), 1, 32, True)
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    for i, shape in enumerate(shapes):
        rows.append(measure(shape, rounds))
        r = rows[-1]
        print(f"[{i + 1}/{len(shapes)}] {shape}: extra {r['extra_estimate_s']:.2f} s, {r['rule']} "
              f"full {r['median_s']['full']:.3f} quick {r['median_s']['quick']:.3f} s "
              f"(spread {r['spread_s']:.3f}) right={r['rule_right']}", file=sys.stderr)
    out = {"meta": {"script": "scripts/compile_tiers.py", "argv": sys.argv[1:], "started": started,
                    "machine": machine_info(), "rounds": rounds,
                    "rule": current_rule(),
                    "wall_s": time.perf_counter() - t0}, "shapes": rows}
    write_report(a.out, out)
    right = sum(r["rule_right"] for r in rows)
    print(f"rule right on {right}/{len(rows)} shapes -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
