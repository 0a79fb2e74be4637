#!/usr/bin/env python
"""Markdown tables for BENCHMARKS.md from committed raw results, so that every number in the
docs is generated from a results file.

    python scripts/bench_tables.py --e2e path/to/e2e.json     # jaxmlp bench --e2e's tables

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_tables.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--e2e", required=True, metavar="E2E_JSON", help="an e2e.json to render")
    a = p.parse_args(argv)
    try:
        report = json.loads(Path(a.e2e).read_text())
        report["cases"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {a.e2e}: not a readable e2e.json ({type(e).__name__})", file=sys.stderr)
        return 2
    print(results.render(results.analyse(report), markdown=True), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
