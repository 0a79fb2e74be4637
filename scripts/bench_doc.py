#!/usr/bin/env python
"""Write BENCHMARKS.md and the README's benchmark blocks from the committed raw results.

    python scripts/bench_doc.py           # regenerate BENCHMARKS.md and the README's blocks
    python scripts/bench_doc.py --check   # exit 1 if either differs from what it would write

BENCHMARKS.md is ``docs/bench/BENCHMARKS.template.md`` with every ``{{name}}`` replaced by a
table or line rendered (``jaxmlp.bench.tables``) from the raw results in ``SOURCES``. The
README's generated blocks sit between ``<!-- bench_doc:NAME -->`` and
``<!-- /bench_doc:NAME -->``. To publish a new run: copy its raw JSON into ``docs/bench/``,
point ``SOURCES`` at it, run this script, commit all three.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from jaxmlp.bench import startup_tables, tables, threshold_tables  # noqa: E402  (pure: no JAX import)
from jaxmlp.bench.e2e import results as e2e_results  # noqa: E402

#: The raw result behind each part of the page.
SOURCES = {
    "inproc": "docs/bench/inproc_f6b2307.json",
    "inproc_before": "docs/bench/inproc_cc3a8cd.json",
    "e2e": "docs/bench/e2e_fd493f7.json",
    "e2e_before": "docs/bench/e2e_2adecca.json",
    "thresholds": "docs/bench/thresholds_tuning.json",
    "thresholds_held_out": "docs/bench/thresholds_held_out.json",
    "thresholds_fresh": "docs/bench/thresholds_fresh.json",
    "thresholds_fresh_long": "docs/bench/thresholds_fresh_whole_long.json",
    "thresholds_interleaved": "docs/bench/thresholds_interleaved_9f0be45.json",
    "thresholds_wide": "docs/bench/thresholds_wide_cc3a8cd.json",
    "thresholds_wide_after": "docs/bench/thresholds_wide_6a183cd.json",
    "thresholds_wide_held_out": "docs/bench/thresholds_wide_held_out_6a183cd.json",
    "scaling": "docs/bench/scaling_751cdfe.json",
    "overlap": "docs/bench/overlap_a0de7bc.json",
    "steplog": "docs/bench/steplog_2c28d74.json",
    "steplog_w2": "docs/bench/steplog_w2_b2b6af9.json",
    "import": "docs/bench/import_056a2fb.json",
    "compile": "docs/bench/compile_profile_776bb80.json",
    "ab_loop": "docs/bench/ab_e906d43.json",
    "ab_commands": "docs/bench/ab_cmd_e906d43.json",
    "ab_rule": "docs/bench/ab_rule_w2_7d0ef6d.json",
    "ab_rule_hidden": "docs/bench/ab_rule_hidden_w2_6a183cd.json",
    "ab_w1_w4": "docs/bench/ab_w1_w4_f6b2307.json",
    "compile_tiers": "docs/bench/compile_tiers_tuning_fd493f7.json",
    "compile_tiers_held_out": "docs/bench/compile_tiers_held_out_2cbecd9.json",
    "compile_tiers_held_out_2": "docs/bench/compile_tiers_held_out_2_776bb80.json",
}
WHAT = {"inproc": "`jaxmlp bench` (in-process: W1, W2, W4, W3, G)",
        "inproc_before": "`jaxmlp bench` (the previous in-process run, before the rule change)",
        "ab_w1_w4": ("`scripts/ab_bench.py` (W1 and W4 at f6b2307 vs cc3a8cd: programs the rule "
                     "change leaves alone)"),
        "e2e": "`jaxmlp bench --e2e` (whole commands)",
        "e2e_before": "`jaxmlp bench --e2e` (whole commands before fit's compile tiers)",
        "thresholds": "`scripts/thresholds.py` (size thresholds, tuning grid, re-scored)",
        "thresholds_held_out": "`scripts/thresholds.py` (size thresholds, held-out shapes)",
        "thresholds_fresh": "`scripts/thresholds.py` (size thresholds, fresh held-out shapes)",
        "thresholds_fresh_long": "`scripts/thresholds.py` (fresh held-out shapes, longer whole runs)",
        "thresholds_interleaved": ("`scripts/thresholds.py` (weight gradients, third held-out "
                                   "grid, runs interleaved)"),
        "thresholds_wide": ("`scripts/thresholds.py --inputs 784` (weight gradients, wide "
                            "inputs, runs interleaved, the size rule alone)"),
        "thresholds_wide_after": ("`scripts/thresholds.py --inputs 784` (the same grid, hidden "
                                  "layers' inputs materialised)"),
        "thresholds_wide_held_out": ("`scripts/thresholds.py --inputs 400` (wide inputs, "
                                     "held-out shapes, hidden layers' inputs materialised)"),
        "scaling": "`scripts/scaling.py` (devices and processes)",
        "overlap": "`scripts/order_overlap.py` (data orders drawn ahead)",
        "steplog": "`scripts/steplog_cost.py` (in-chunk step reports)",
        "steplog_w2": "`scripts/steplog_cost.py --only W2` (W2 again, more rounds)",
        "import": "`scripts/import_time.py` (import time per ml_dtypes release)",
        "compile": "`scripts/compile_profile.py` (the training chunk's compile by stage)",
        "ab_loop": "`scripts/ab_bench.py` (fifth session's A/B, compiled loop)",
        "ab_commands": "`scripts/ab_bench.py --commands` (fifth session's A/B, commands)",
        "ab_rule": "`scripts/ab_bench.py` (W2, the weight-gradient rule: every layer "
                   "materialised at 7d0ef6d vs the bound at 603c4e5)",
        "ab_rule_hidden": ("`scripts/ab_bench.py` (W2, hidden layers' inputs materialised at "
                           "6a183cd vs the size rule alone at 815053f)"),
        "compile_tiers": ("`scripts/compile_tiers.py` (fit's quick-compile rule: the 16 shapes "
                          "it was fitted on, re-scored)"),
        "compile_tiers_held_out": ("`scripts/compile_tiers.py --shapes held-out` (14 held-out "
                                   "shapes, re-scored)"),
        "compile_tiers_held_out_2": "`scripts/compile_tiers.py --shapes held-out-2` (14 more)"}
TEMPLATE = ROOT / "docs" / "bench" / "BENCHMARKS.template.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
README = ROOT / "README.md"


def load() -> dict:
    return {k: json.loads((ROOT / p).read_text()) for k, p in SOURCES.items()}


def _command(raw: dict, key: str) -> str:
    meta = raw[key]["meta"]
    argv = " ".join(meta.get("argv", []))
    if key.startswith("thresholds") and meta.get("rescored"):  # measured in runs, re-scored
        return "\n".join([f"python scripts/thresholds.py {' '.join(r['argv'])}"
                          for r in meta["runs"]] +
                         [f"python scripts/thresholds.py {' '.join(meta['rescored']['argv'])}"])
    if key.startswith("compile_tiers"):  # measured (then, if so, re-scored)
        runs = [meta["argv"]] + ([meta["rescored"]["argv"]] if meta.get("rescored") else [])
        return "\n".join(f"python scripts/compile_tiers.py {' '.join(args)}".rstrip()
                          for args in runs)
    script = {"inproc": "jaxmlp bench", "e2e": "jaxmlp bench --e2e",
              "scaling": "python scripts/scaling.py",
              "overlap": "python scripts/order_overlap.py",
              "steplog": "python scripts/steplog_cost.py",
              "steplog_w2": "python scripts/steplog_cost.py",
              "import": "python scripts/import_time.py",
              "compile": "python scripts/compile_profile.py"}.get(key, "python scripts/thresholds.py")
    return f"{script} {argv}".rstrip()


def _machine(raw: dict, key: str) -> str:
    meta = raw[key]["meta"]
    meta = {**meta, "started": meta.get("started") or meta.get("finished", "?")}
    return f"Machine ({SOURCES[key]}): {tables.machine_line(meta)}."


def parts(raw: dict) -> dict:
    """Every ``{{name}}`` of the template, rendered."""
    inp, e2e = raw["inproc"], raw["e2e"]
    out = {
        "sources": "\n".join(f"- [{p}]({p}): {WHAT[k]}" for k, p in SOURCES.items()),
        "headline": tables.headline(inp, e2e),
        "targets": tables.targets(inp, e2e),
        "targets_runs": tables.targets_across(
            [(f"this run ({SOURCES['inproc']})", inp),
             (f"previous run ({SOURCES['inproc_before']})", raw["inproc_before"])], e2e),
        "ab_w1_w4": tables.ab_table(raw["ab_w1_w4"]),
        "sizes": tables.workload_sizes(inp),
        "training": tables.training_detail(inp),
        "w3": tables.w3_detail(inp),
        "checks": tables.loss_checks(inp),
        "g": tables.g_table(inp),
        "e2e": tables.e2e_tables(e2e),
        "e2e_tiers": startup_tables.e2e_before_after(e2e_results.analyse(raw["e2e_before"]),
                                                     e2e_results.analyse(e2e)),
        "thresholds": threshold_tables.thresholds(raw["thresholds"]),
        "thresholds_held_out": threshold_tables.thresholds(raw["thresholds_held_out"]),
        "thresholds_fresh": threshold_tables.thresholds(raw["thresholds_fresh"]),
        "thresholds_fresh_long": threshold_tables.thresholds(raw["thresholds_fresh_long"]),
        "thresholds_interleaved": threshold_tables.thresholds(raw["thresholds_interleaved"]),
        "thresholds_wide": threshold_tables.thresholds(raw["thresholds_wide"]),
        "thresholds_wide_after": threshold_tables.thresholds(raw["thresholds_wide_after"]),
        "thresholds_wide_held_out": threshold_tables.thresholds(raw["thresholds_wide_held_out"]),
        "scaling": tables.scaling(raw["scaling"]),
        "overlap": tables.overlap(raw["overlap"]),
        "steplog": tables.steplog_cost(raw["steplog"]),
        "steplog_w2": tables.steplog_cost(raw["steplog_w2"]),
        "import": startup_tables.import_time(raw["import"]),
        "compile": startup_tables.compile_profile(raw["compile"]),
        "ab_loop": tables.ab_table(raw["ab_loop"]),
        "ab_commands": tables.ab_table(raw["ab_commands"]),
        "ab_rule": tables.ab_table(raw["ab_rule"]),
        "ab_rule_hidden": tables.ab_table(raw["ab_rule_hidden"]),
        "compile_tiers": startup_tables.compile_tiers(raw["compile_tiers"]),
        "compile_tiers_held_out": startup_tables.compile_tiers(raw["compile_tiers_held_out"]),
        "compile_tiers_held_out_2": startup_tables.compile_tiers(raw["compile_tiers_held_out_2"]),
    }
    for k in ("inproc", "e2e", "thresholds", "thresholds_held_out", "thresholds_fresh",
              "thresholds_fresh_long", "thresholds_interleaved", "thresholds_wide",
              "thresholds_wide_after", "thresholds_wide_held_out", "scaling", "overlap", "steplog",
              "steplog_w2", "import", "compile", "compile_tiers",
              "compile_tiers_held_out", "compile_tiers_held_out_2"):
        out[f"command_{k}"] = _command(raw, k)
        out[f"machine_{k}"] = _machine(raw, k)
    return out


def render_benchmarks(raw: dict) -> str:
    p = parts(raw)
    text = TEMPLATE.read_text()
    missing = sorted(set(re.findall(r"\{\{(\w+)\}\}", text)) - set(p))
    if missing:
        raise SystemExit(f"error: {TEMPLATE}: no part named {', '.join(missing)}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: p[m.group(1)].rstrip("\n"), text)


def readme_blocks(raw: dict) -> dict[str, str]:
    """The README's generated blocks: the set-up figures and the benchmark headline."""
    e2e = e2e_results.analyse(raw["e2e"])
    c = e2e["cases"]
    cold, warm, floor = (c[f"train/{k}"] for k in ("jaxmlp_cold", "jaxmlp_warm", "floor"))
    m = raw["e2e"]["meta"]["machine"]
    where = f"{m.get('Model name', '?')}, {m.get('cpu_count', '?')} cores"
    setup = (f"The first installs the package and trains a 64-128-10 tanh MLP on scikit-learn's "
             f"bundled digits (the default data set, read from scikit-learn's files without "
             f"importing it; no network needed): {warm['accuracy']['mean']:.1%} test accuracy "
             f"after {warm['breakdown']['train_s']['median']:.2f} s of training. The whole "
             f"`jaxmlp train` command takes {cold['wall_s']['median']:.2f} s the first time (XLA "
             f"compiles its programs) and {warm['wall_s']['median']:.2f} s afterwards (the "
             f"programs come from the compile cache), against {floor['wall_s']['median']:.2f} s "
             f"for `python -c \"import jax; jax.numpy.zeros(1)\"` (`jaxmlp bench --e2e`, "
             f"{where}; see Benchmarks).")
    met = [m for _, _, m in tables.target_rows(raw["inproc"], raw["e2e"])]
    n_met, n_missed = met.count(True), met.count(False)
    bench = "\n".join([
        "Speedup of jaxmlp = the peer's time / jaxmlp's time (higher is better; median "
        "[min–max] over 3 interleaved rounds), against each peer's fastest form. Train only: "
        "compile excluded. Time to result in-process: every compile included. Whole command: "
        "a fresh process from spawn to exit, with an empty (cold) or filled (warm) compile "
        "cache, against the peer's script for the same job.", "",
        tables.headline(raw["inproc"], raw["e2e"]).rstrip("\n"), "",
        f"{tables.machine_line(raw['inproc']['meta'])}. Targets: {n_met} met, {n_missed} "
        f"missed (the table in [BENCHMARKS.md](BENCHMARKS.md#targets)). Generated by "
        f"`python scripts/bench_doc.py` from the raw results in `docs/bench/`."])
    return {"setup": setup, "benchmarks": bench}


def render_readme(raw: dict, text: str) -> str:
    for name, body in readme_blocks(raw).items():
        pat = re.compile(rf"(<!-- bench_doc:{name} -->\n).*?(\n<!-- /bench_doc:{name} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"error: README.md has no bench_doc:{name} block")
        text = pat.sub(lambda m: m.group(1) + body + m.group(2), text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="exit 1 if BENCHMARKS.md or the README's blocks are out of date")
    a = p.parse_args(argv)
    raw = load()
    want = {BENCHMARKS: render_benchmarks(raw), README: render_readme(raw, README.read_text())}
    stale = [f.name for f, t in want.items() if not f.exists() or f.read_text() != t]
    if a.check:
        if stale:
            print(f"out of date: {', '.join(stale)} (run python scripts/bench_doc.py)")
            return 1
        print("BENCHMARKS.md and README.md match the raw results")
        return 0
    for f, t in want.items():
        f.write_text(t)
    print(f"wrote {', '.join(f.name for f in want)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
