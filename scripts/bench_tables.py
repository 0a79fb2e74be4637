#!/usr/bin/env python
"""Markdown tables for BENCHMARKS.md from committed raw results, so that every number in the
docs is generated from a results file.

    python scripts/bench_tables.py --e2e path/to/e2e.json     # jaxmlp bench --e2e's tables
    python scripts/bench_tables.py --ab path/to/ab.json       # scripts/ab_bench.py's table
    python scripts/bench_tables.py --inproc path/to/bench.json  # jaxmlp bench's headline

Recomputes the statistics, ratios and targets from the per-round values in the file (the
same code as ``jaxmlp bench --e2e``) and prints markdown on stdout. Exit 2 on a missing or
unreadable file.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from jaxmlp.bench.e2e import results  # noqa: E402  (pure: no JAX import)


def ab_table(report: dict) -> str:
    """The A/B of the compiled loop (``scripts/ab_bench.py``): medians [min-max] of train_s per
    side, the ratio of medians, compile, and whether the final losses agree."""
    m = report["meta"]
    lines = [f"base `{m['base'][:7]}` vs head `{m['head'][:7]}`"
             f"{' (uncommitted changes)' if m['head_dirty'] else ''}; {m['rounds']} rounds x "
             f"{m['reps']} timed fits per side (or one command pair), alternating; {m['cpu_model']}, {m['cpu_count']} "
             f"cores; `{m['command']}`", "",
             "| workload | base train s | head train s | head/base | compile s (base, head) | "
             "final train loss |", "|---|---|---|---|---|---|"]
    if report.get("commands"):
        lines[2:] = ["| command | base wall s | head wall s | head/base | compile s (base, head) | "
                     "import s (base, head) |", "|---|---|---|---|---|---|"]
        for job, res in report["commands"].items():
            for m in ("cold", "warm"):
                b, h = res["median"]["base"][m], res["median"]["head"][m]
                lines.append(f"| `jaxmlp {job}`, {'empty' if m == 'cold' else 'filled'} compile "
                             f"cache | {b['wall_s']:.3f} | {h['wall_s']:.3f} | "
                             f"{h['wall_s'] / b['wall_s']:.3f} | {b['compile_s']:.3f}, "
                             f"{h['compile_s']:.3f} | {b['import_s']:.3f}, {h['import_s']:.3f} |")
    for w, r in report["workloads"].items():
        b, h = r["base"], r["head"]
        rng = lambda s: f"{s['train_s_median']:.4f} [{s['train_s_min']:.4f}–{s['train_s_max']:.4f}]"
        same = "identical" if b["train_loss"] == h["train_loss"] else (
            f"differ: {b['train_loss']} vs {h['train_loss']}")
        lines.append(f"| {w} {r['name']} | {rng(b)} | {rng(h)} | "
                     f"{h['train_s_median'] / b['train_s_median']:.3f} | "
                     f"{b['compile_s_median']:.2f}, {h['compile_s_median']:.2f} | {same} |")
    return "\n".join(lines) + "\n"


def _x(s: dict | None) -> str:
    return f"{s['median']:.2f}x [{s['min']:.2f}–{s['max']:.2f}]" if s else "–"


def inproc_table(report: dict) -> str:
    """``jaxmlp bench``'s headline: per workload jaxmlp's train-only and time-to-result seconds
    and the speedups over each peer in both (W3: total including compile, against each peer's
    fastest form), with the loss-check verdict."""
    m = report["meta"]
    mach = m.get("machine", {})
    lines = [f"{mach.get('Model name', '?')}, {mach.get('cpu_count', '?')} cores; "
             f"{m.get('rounds', '?')} interleaved rounds; `jaxmlp bench {' '.join(m.get('argv', []))}`",
             "",
             "| workload | jaxmlp train s | jaxmlp time to result s | vs PyTorch: train | "
             "time to result | vs scikit-learn: train | time to result | losses agree |",
             "|---|---|---|---|---|---|---|---|"]
    for wl, r in report["workloads"].items():
        if wl in ("G", "W3"):
            continue
        j, sp = r["frameworks"]["jaxmlp"], r["speedup"]
        torch = max(("pytorch", "pytorch_1t"), key=lambda f: -(sp.get(f) or {}).get("median", 1e9))
        ttr = j.get("time_to_result_s", {}).get("median")
        lines.append(f"| {wl} | {j['train_s']['median']:.3f} | "
                     f"{f'{ttr:.3f}' if ttr else '–'} | {_x(sp.get(torch))} | "
                     f"{_x((sp.get(torch) or {}).get('time_to_result'))} | {_x(sp.get('sklearn'))} | "
                     f"{_x((sp.get('sklearn') or {}).get('time_to_result'))} | "
                     f"{'yes' if r['loss_check_passed'] else '**no**'} |")
    w3 = report["workloads"].get("W3")
    if w3:
        j = w3["frameworks"]["jaxmlp"]["total_s"]
        fast = w3.get("speedup_vs_fastest", {})
        form = lambda f: f" ({fast[f]['form']})" if f in fast else ""
        lines.append(f"| W3 (total incl. compile, vs the peer's fastest form) | {j['median']:.3f} | "
                     f"{j['median']:.3f} | – | {_x(fast.get('pytorch'))}{form('pytorch')} | – | "
                     f"{_x(fast.get('sklearn'))}{form('sklearn')} | "
                     f"{'yes' if w3['loss_check_passed'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_tables.py", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--e2e", metavar="E2E_JSON", help="an e2e.json to render")
    g.add_argument("--ab", metavar="AB_JSON", help="an ab_bench.py result to render")
    g.add_argument("--inproc", metavar="BENCH_JSON", help="a jaxmlp bench result to render")
    a = p.parse_args(argv)
    if a.e2e:
        path, what, render = a.e2e, "e2e.json", lambda r: results.render(
            results.analyse(r), markdown=True)
    else:
        path, what, render = ((a.ab, "ab_bench.py result", ab_table) if a.ab else
                              (a.inproc, "jaxmlp bench result", inproc_table))
    try:
        text = render(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {path}: not a readable {what} ({type(e).__name__})", file=sys.stderr)
        return 2
    print(text, end="")
    return 0

if __name__ == "__main__":
    sys.exit(main())
