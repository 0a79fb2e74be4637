#!/usr/bin/env python
"""Markdown tables for BENCHMARKS.md from committed raw results, so that every number in the
docs is generated from a results file.

    python scripts/bench_tables.py --e2e path/to/e2e.json     # jaxmlp bench --e2e's tables
    python scripts/bench_tables.py --ab path/to/ab.json       # scripts/ab_bench.py's table
    python scripts/bench_tables.py --inproc path/to/bench.json  # jaxmlp bench's tables
    python scripts/bench_tables.py --headline bench.json e2e.json   # the README's headline
    python scripts/bench_tables.py --thresholds path/to/thresholds.json
    python scripts/bench_tables.py --scaling path/to/scaling.json

Recomputes the statistics, ratios and targets from the per-round values in the file (the
same code as the benchmarks; ``jaxmlp.bench.tables``) and prints markdown on stdout. Exit 2 on
a missing or unreadable file. ``scripts/bench_doc.py`` writes these into BENCHMARKS.md.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from jaxmlp.bench import tables, threshold_tables  # noqa: E402  (pure: no JAX import)


def inproc(report: dict) -> str:
    return "\n".join([tables.training_detail(report), tables.w3_detail(report),
                      tables.g_table(report), tables.loss_checks(report),
                      tables.targets(report)])


RENDER = {"e2e": ("e2e.json", tables.e2e_tables), "ab": ("ab_bench.py result", tables.ab_table),
          "inproc": ("jaxmlp bench result", inproc),
          "thresholds": ("thresholds.py result", threshold_tables.thresholds),
          "scaling": ("scaling.py result", tables.scaling)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_tables.py", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    for k, (what, _) in RENDER.items():
        g.add_argument(f"--{k}", metavar="JSON", help=f"a {what} to render")
    g.add_argument("--headline", nargs=2, metavar=("BENCH_JSON", "E2E_JSON"),
                   help="jaxmlp bench and jaxmlp bench --e2e results: the three-column headline")
    a = p.parse_args(argv)
    try:
        if a.headline:
            docs = [json.loads(Path(f).read_text()) for f in a.headline]
            text = tables.headline(*docs)
        else:
            k = next(k for k in RENDER if getattr(a, k))
            path = getattr(a, k)
            text = RENDER[k][1](json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        where = " ".join(a.headline) if a.headline else path
        print(f"error: {where}: not a readable result ({type(e).__name__})", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
