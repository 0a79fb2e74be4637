#!/usr/bin/env python
"""Are jaxmlp's two size thresholds right on shapes that are not the benchmark's?

    python scripts/thresholds.py --out docs/bench/thresholds.json     # ~20 min on 2 cores
    python scripts/thresholds.py --quick --out /tmp/t.json             # a smoke test
    python scripts/thresholds.py --widths 32,512,2048 --batches 64,256 --out held_out.json
    python scripts/thresholds.py --rescore old.json --out new.json   # the current rules' picks
    python scripts/bench_tables.py --thresholds docs/bench/thresholds.json   # the tables

Shapes: input 64 (``--inputs``), output 10 (classification, random data), tanh hidden
layers of width 16-4096, depth 1-4, batch 32-1024. The persistent compile cache is off and jaxmlp's program
caches are cleared between variants, so every variant is compiled and timed afresh.

* ``MATERIALISE_MAX`` (``jaxmlp.nn``): a weight gradient with at most this many entries (or a
  side of at most ``MATERIALISE_MIN_DIM``, or, with ``MATERIALISE_HIDDEN``, a layer fed by a
  hidden layer) is computed with the smaller operand transposed and materialised; any other
  with XLA's own transposed-operand product. For each shape ``jaxmlp.fit`` trains the model three ways: every
  layer materialised, every layer XLA's product, and the rule (per layer), the ways interleaved
  run by run (``"materialise_runs": "interleaved"`` in the JSON's meta; files without it ran
  each way's runs back to back). Where the rule gives the same program as a uniform variant,
  that variant's time is the rule's. The rule picks the
  faster path when its training time is at most the faster uniform variant's (strictly, and
  within the spread measured between two runs of one program).
* ``SHORT_RUN_FLOPS`` (``jaxmlp.training.compile``): a training program (``fit``, ``sweep``) whose estimated training
  FLOPs are at most this is compiled for a short run (less compile time, slower steps). For
  each shape a 2-model sweep is compiled and run both ways (``fast_compile=True/False``);
  compile time and time per epoch give each way's total for any run length, and the rule is
  scored at six run lengths (1e10-3e12 FLOPs): it picks the faster way when its predicted
  total is at most the other's.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time

os.environ["JAXMLP_COMPILE_CACHE"] = "off"

import numpy as np  # noqa: E402

WIDTHS = (16, 64, 256, 1024, 4096)
BATCHES = (32, 128, 1024)
DEPTHS = (1, 2, 3, 4)
RUN_FLOPS = (1e10, 3e10, 1e11, 3e11, 1e12, 3e12)
N_IN, N_OUT = 64, 10


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_IN)).astype(np.float32)
    return X, rng.integers(0, N_OUT, n).astype(np.int32)


def sizes(width, depth):
    return [N_IN, *([width] * depth), N_OUT]


def step_flops(width, depth, batch):
    """Training FLOPs of one step, as ``sweep`` estimates them (``training_flops_estimate``)."""
    from jaxmlp.nn import training_flops_estimate
    return training_flops_estimate(sizes(width, depth), batch, 1, 1)


#: The most steps a whole-run fit takes (small shapes reach it before their FLOPs target).
MAX_STEPS = 4000


def plan_fit(width, depth, batch, target, max_steps=MAX_STEPS):
    """Rows and epochs of a fit doing about ``target`` FLOPs (at least 2 steps and 1 epoch, at
    most ``max_steps`` steps)."""
    steps = int(min(max(target / step_flops(width, depth, batch), 2), max_steps))
    per_epoch = min(steps, 20)
    return batch * per_epoch, max(1, round(steps / per_epoch))


#: The rule's constants (``MATERIALISE_MAX``, ``MATERIALISE_MIN_DIM``, ``MATERIALISE_HIDDEN``)
#: for each path: every weight gradient materialised, none, the rule.
PATHS = {"materialised": (1 << 62, 1 << 62, True), "xla": (-1, -1, False), "rule": None}


@contextlib.contextmanager
def weight_gradient_path(path):
    """``jaxmlp.nn.materialises`` forced to one path (``PATHS``) while programs are traced."""
    import jaxmlp.nn as nn
    saved = nn.MATERIALISE_MAX, nn.MATERIALISE_MIN_DIM, nn.MATERIALISE_HIDDEN
    if PATHS[path] is not None:
        nn.MATERIALISE_MAX, nn.MATERIALISE_MIN_DIM, nn.MATERIALISE_HIDDEN = PATHS[path]
    try:
        yield
    finally:
        nn.MATERIALISE_MAX, nn.MATERIALISE_MIN_DIM, nn.MATERIALISE_HIDDEN = saved


def fit_seconds(width, depth, batch, paths, target, reps, max_steps=MAX_STEPS):
    """Train seconds of ``jaxmlp.fit`` with every weight gradient on each of ``paths``, ``reps``
    runs per path, the paths interleaved (path A, path B, ..., then again: a slow spell of the
    machine lands on every path alike), each run's programs compiled afresh (compile is not
    counted). Returns ``{path: (best, every run)}``."""
    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig
    n, epochs = plan_fit(width, depth, batch, target, max_steps)
    X, y = data(n)
    ts = {p: [] for p in paths}
    for _ in range(reps):
        for path in paths:
            with weight_gradient_path(path):
                jaxmlp.clear_caches()
                _, hist = jaxmlp.fit((X, y), model=ModelConfig(hidden=(width,) * depth),
                                     train=TrainConfig(epochs=epochs, batch_size=batch, lr=0.01))
                ts[path].append(hist["final"]["train_s"])
    jaxmlp.clear_caches()
    return {p: (min(v), v) for p, v in ts.items()}


def materialise_case(width, depth, batch, target, reps, max_steps=MAX_STEPS):
    from jaxmlp.nn import materialises
    pairs = list(zip(sizes(width, depth)[:-1], sizes(width, depth)[1:]))
    layers = [a * b for a, b in pairs]
    mat = [materialises(a, b, hidden_input=i > 0) for i, (a, b) in enumerate(pairs)]
    paths = ["materialised", "xla"] + ([] if all(mat) or not any(mat) else ["rule"])
    res = fit_seconds(width, depth, batch, paths, target, reps, max_steps)
    t = {"materialised": res["materialised"][0], "xla": res["xla"][0]}
    runs_m, runs_x = res["materialised"][1], res["xla"][1]
    if all(mat):
        rule_is, runs_r = "materialised", runs_m
    elif not any(mat):
        rule_is, runs_r = "xla", runs_x
    else:
        rule_is = "mixed"
        t["mixed"], runs_r = res["rule"]
    rule = t[rule_is]
    others = [v for k, v in t.items() if k != rule_is]
    spread = max(runs_r) / min(runs_r) - 1.0 if len(runs_r) > 1 else 0.0
    runs = {"materialised": runs_m, "xla": runs_x, "rule": runs_r}
    case = {"width": width, "depth": depth, "batch": batch, "layer_entries": layers,
            "rule_materialises": mat, "rule_is": rule_is, "train_s": t, "runs": runs,
            "rule_over_best_other": rule / min(others), "rule_spread": spread,
            "strict": rule <= min(others), "within_spread": rule <= min(others) * (1 + spread)}
    if reps >= 3:  # a tie: the rule's runs and the fastest other path's runs overlap
        best = min((k for k in t if k != rule_is), key=t.get)
        other = runs["rule"] if best == "mixed" else runs[best]
        case["tie"] = not (max(runs_r) < min(other) or max(other) < min(runs_r))
    return case


def product_case(batch, fan_in, fan_out, reps=9):
    """Microseconds of one weight gradient ``x^T g`` (x: (batch, fan_in), g: (batch, fan_out))
    inside a scan of fresh operands, as ``jaxmlp.nn.weight_gradient`` computes it with the
    operand materialised and with XLA's own product (best of ``reps`` calls, the two
    interleaved; every call kept), and the rule's choice."""
    import jax
    import jax.numpy as jnp

    import jaxmlp.nn as nn
    from jaxmlp.training import fast_jit
    steps = int(min(max(2e9 / (2.0 * batch * fan_in * fan_out), 4), 400))
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    X = jax.random.normal(k1, (steps, batch, fan_in))
    G = jax.random.normal(k2, (steps, batch, fan_out))

    def build(path):
        with weight_gradient_path(path):
            def run(X, G):
                body = lambda c, xg: (c + nn.weight_gradient(xg[0], xg[1] + c[0, 0]), None)
                return jax.lax.scan(body, jnp.zeros((fan_in, fan_out)), (X, G))[0]
            return fast_jit(run).lower(X, G).compile()
    progs = {"materialised": build("materialised"), "xla": build("xla")}
    calls = {k: [] for k in progs}
    for k, c in progs.items():
        jax.block_until_ready(c(X, G))
    for _ in range(reps):
        for k, c in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(X, G))
            calls[k].append((time.perf_counter() - t0) / steps * 1e6)
    return score_product({"batch": batch, "fan_in": fan_in, "fan_out": fan_out,
                          "us": {k: min(v) for k, v in calls.items()}, "calls_us": calls})


def product_shapes():
    """Every weight-gradient shape of the grid's models: (batch, fan_in, fan_out)."""
    pairs = sorted({p for w in WIDTHS for d in DEPTHS
                    for p in zip(sizes(w, d)[:-1], sizes(w, d)[1:])})
    return [(b, a, c) for b in BATCHES for a, c in pairs]


def sweep_once(width, depth, batch, fast, epochs):
    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig
    X, y = data(2 * batch)
    jaxmlp.clear_caches()
    out = jaxmlp.sweep((X, y), model=ModelConfig(hidden=(width,) * depth),
                       train=TrainConfig(epochs=epochs, batch_size=batch, lr=0.01),
                       grid={"lr": [0.01, 0.02]}, seeds=1, fast_compile=fast)
    jaxmlp.clear_caches()
    return out.info["compile_s"], out.info["run_s"]


def short_run_case(width, depth, batch, target, reps=1):
    """Compile and run seconds of a 2-model sweep compiled both ways, ``reps`` times each (the
    ways interleaved, every program compiled afresh); the best of the reps, and every rep."""
    per_epoch = 2 * step_flops(width, depth, batch) * 2       # 2 models, 2 steps per epoch
    epochs = int(min(max(target / per_epoch, 1), 2000))
    runs = {"short": [], "full": []}
    for _ in range(reps):
        for name, fast in (("short", True), ("full", False)):
            c, r = sweep_once(width, depth, batch, fast, epochs)
            runs[name].append({"compile_s": c, "run_s": r, "epoch_s": r / epochs})
    way = {k: {q: min(x[q] for x in v) for q in ("compile_s", "run_s", "epoch_s")}
           for k, v in runs.items()}
    case = {"width": width, "depth": depth, "batch": batch, "epochs_measured": epochs,
            "flops_per_epoch": per_epoch, "ways": way}
    if reps > 1:
        case["reps"] = runs
    return score_short_run(case)


def score_short_run(case):
    """``case["cases"]``: each run length's totals (compile + epochs x seconds per epoch) and
    whether ``jaxmlp.training.compiles_short`` picks the smaller."""
    from jaxmlp.training import compiles_short
    out = []
    for F in RUN_FLOPS:
        e = F / case["flops_per_epoch"]
        tot = {k: v["compile_s"] + e * v["epoch_s"] for k, v in case["ways"].items()}
        pick = "short" if compiles_short(F, [sizes(case["width"], case["depth"])]) else "full"
        other = "full" if pick == "short" else "short"
        row = {"run_flops": F, "total_s": tot, "rule_picks": pick,
               "faster": min(tot, key=tot.get), "ok": tot[pick] <= tot[other],
               "rule_over_other": tot[pick] / tot[other]}
        if case.get("reps"):  # a tie: the two ways' totals over the reps overlap
            span = {k: [x["compile_s"] + e * x["epoch_s"] for x in v]
                    for k, v in case["reps"].items()}
            row["tie"] = not (max(span[pick]) < min(span[other])
                              or max(span[other]) < min(span[pick]))
        out.append(row)
    return {**case, "cases": out}


def score_product(case):
    """``case`` with the pick of ``jaxmlp.nn.materialises`` and whether it is the faster."""
    from jaxmlp.nn import materialises
    us = case["us"]
    pick = "materialised" if materialises(case["fan_in"], case["fan_out"]) else "xla"
    other = "xla" if pick == "materialised" else "materialised"
    out = {**case, "rule_picks": pick, "faster": min(us, key=us.get), "ok": us[pick] <= us[other],
           "rule_over_other": us[pick] / us[other]}
    if case.get("calls_us"):  # the noise: how far a program's second-best call is from its best
        noise = max(sorted(v)[1] / min(v) - 1.0 for v in case["calls_us"].values())
        out.update(noise=noise, tie=abs(us[pick] / us[other] - 1.0) <= noise)
    return out


def rules_meta():
    """The rules' constants and wording, as the code under test has them."""
    import jaxmlp.nn as nn
    import jaxmlp.training.compile as sp
    return {"MATERIALISE_MAX": nn.MATERIALISE_MAX,
            "MATERIALISE_MIN_DIM": getattr(nn, "MATERIALISE_MIN_DIM", None),
            "SHORT_RUN_FLOPS": sp.SHORT_RUN_FLOPS,
            "SHORT_RUN_FLOPS_WIDE_FIRST": sp.SHORT_RUN_FLOPS_WIDE_FIRST,
            "WIDE_FIRST_WIDTH": sp.WIDE_FIRST_WIDTH,
            "MATERIALISE_HIDDEN": nn.MATERIALISE_HIDDEN,
            "materialise_rule": (f"min(fan_in, fan_out) <= {nn.MATERIALISE_MIN_DIM} or "
                                 f"fan_in * fan_out <= {nn.MATERIALISE_MAX}"
                                 + (" or the layer's input is a hidden layer's output"
                                    if nn.MATERIALISE_HIDDEN else "")),
            "short_run_rule": (f"estimated training FLOPs <= {sp.SHORT_RUN_FLOPS:.0e}, or <= "
                               f"{sp.SHORT_RUN_FLOPS_WIDE_FIRST:.0e} for one hidden layer of "
                               f">= {sp.WIDE_FIRST_WIDTH} units")}


def main(argv=None):
    global WIDTHS, BATCHES, DEPTHS, N_IN
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="3 shapes, 1 rep")
    p.add_argument("--only", choices=("products", "materialise", "short_run"), default=None)
    p.add_argument("--reps", type=int, default=1,
                   help="short-run: compile and run each way this many times (ties: totals "
                        "that overlap over the reps); whole runs: this many fits per path "
                        "(at least 2; from 3 on, ties: runs that overlap)")
    p.add_argument("--whole-flops", type=float, default=3e10,
                   help="whole runs: training FLOPs of each fit (default 3e10)")
    p.add_argument("--max-steps", type=int, default=MAX_STEPS,
                   help=f"whole runs: at most this many steps per fit (default {MAX_STEPS})")
    p.add_argument("--widths", default=None, help="comma list (default: 16,64,256,1024,4096)")
    p.add_argument("--batches", default=None, help="comma list (default: 32,128,1024)")
    p.add_argument("--depths", default=None, help="comma list (default: 1,2,3,4)")
    p.add_argument("--inputs", type=int, default=N_IN,
                   help=f"input features of every shape (default {N_IN})")
    p.add_argument("--rescore", metavar="JSON", nargs="+", default=None,
                   help="merge earlier runs (each part from the last run that has it) and re-score "
                        "their products and short-run measurements with the rules of this code "
                        "(the whole-run table keeps the rule it ran with)")
    a = p.parse_args(argv)
    import jax
    from jaxmlp.bench.machine import machine_info
    N_IN = a.inputs
    ints = lambda t, d: tuple(int(v) for v in t.split(",")) if t else d
    WIDTHS, BATCHES, DEPTHS = ints(a.widths, WIDTHS), ints(a.batches, BATCHES), ints(a.depths, DEPTHS)
    if a.rescore:
        runs = [json.loads(open(f).read()) for f in a.rescore]
        rep = {"meta": dict(runs[0]["meta"])}
        rule_keys = ("MATERIALISE_MAX", "MATERIALISE_MIN_DIM", "MATERIALISE_HIDDEN", "SHORT_RUN_FLOPS",
                     "SHORT_RUN_WIDTH", "SHORT_RUN_FLOPS_WIDE_FIRST", "WIDE_FIRST_WIDTH",
                     "materialise_rule", "short_run_rule")
        rep["meta"]["part_rules"] = {}
        for part in ("products", "materialise", "short_run"):  # a later run's part replaces
            src = next((r for r in reversed(runs) if r.get(part)), None)
            rep[part] = src[part] if src else []
            if src:  # the rules the part was measured (and first scored) with
                m = src["meta"].get("part_rules", {}).get(part) or src["meta"]
                rep["meta"]["part_rules"][part] = {k: m.get(k) for k in rule_keys}
        rep["meta"]["runs"] = [{k: r["meta"].get(k) for k in ("argv", "started", "elapsed_s")}
                               for r in runs]
        rep["meta"]["rescored"] = {"argv": list(argv or sys.argv[1:]), **rules_meta()}
        keep = lambda c, keys: c.get("measured_rule") or {k: c[k] for k in keys if k in c}
        rep["products"] = [{**score_product(c), "measured_rule": keep(
            c, ("rule_picks", "ok", "rule_over_other"))} for c in rep.get("products", [])]
        rep["short_run"] = [{**score_short_run(c), "measured_rule": keep(c, ("cases",))}
                            for c in rep.get("short_run", [])]
        from jaxmlp.bench.raw import write_report
        write_report(a.out, rep)
        print(f"wrote {a.out}")
        return
    shapes = list(itertools.product(WIDTHS, DEPTHS, BATCHES))
    if a.quick:
        shapes = [(16, 1, 32), (256, 2, 128), (1024, 1, 32)]
    rep = {"meta": {"argv": list(argv or sys.argv[1:]), "machine": machine_info(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"), "jax": jax.__version__,
                    **rules_meta(), "whole_flops": a.whole_flops, "max_steps": a.max_steps,
                    "widths": WIDTHS, "batches": BATCHES, "depths": DEPTHS,
                    "input": N_IN, "outputs": N_OUT, "run_flops": RUN_FLOPS,
                    "materialise_runs": "interleaved", "doc": __doc__.strip()},
           "products": [], "materialise": [], "short_run": []}
    t0 = time.time()
    if a.only in (None, "products"):
        for b, fi, fo in product_shapes()[::7] if a.quick else product_shapes():
            r = product_case(b, fi, fo)
            rep["products"].append(r)
            print(f"product b{b} {fi}x{fo}: " + " ".join(f"{k} {v:.2f}" for k, v in r["us"].items())
                  + f" us  rule {r['rule_picks']}  {'ok' if r['ok'] else 'WRONG'}", flush=True)
    if a.only in (None, "materialise"):
        for w, d, b in shapes:
            r = materialise_case(w, d, b, 2e9 if a.quick else a.whole_flops,
                                 1 if a.quick else max(2, a.reps), a.max_steps)
            rep["materialise"].append(r)
            print(f"materialise w{w} d{d} b{b}: {r['rule_is']:12s} "
                  + " ".join(f"{k} {v:.3f}" for k, v in r["train_s"].items())
                  + f"  rule/best other {r['rule_over_best_other']:.3f}", flush=True)
    if a.only in (None, "short_run"):
        for w, d, b in shapes:
            r = short_run_case(w, d, b, 2e9 if a.quick else 4e10, a.reps)
            rep["short_run"].append(r)
            print(f"short_run w{w} d{d} b{b}: " + " ".join(
                f"{k} compile {v['compile_s']:.2f} epoch {v['epoch_s']:.4f}"
                for k, v in r["ways"].items()) + "  ok " + "".join(
                "y" if c["ok"] else "n" for c in r["cases"]), flush=True)
    rep["meta"]["elapsed_s"] = time.time() - t0
    from jaxmlp.bench.raw import write_report
    write_report(a.out, rep)
    print(f"wrote {a.out} ({rep['meta']['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
