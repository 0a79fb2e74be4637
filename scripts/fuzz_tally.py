#!/usr/bin/env python
"""Tally a CLI fuzz log (``FUZZ_LOG=path`` of ``tests/test_fuzz_cli.py``; ``.gz`` accepted):
runs per test and per exit code, and the slowest run.

    FUZZ_RANDOM=1 FUZZ_EXAMPLES=2000 FUZZ_LOG=fuzz.jsonl python -m pytest tests/test_fuzz_cli.py
    python scripts/fuzz_tally.py fuzz.jsonl
"""
import collections
import gzip
import json
import sys


def main(argv=None) -> int:
    path = (argv or sys.argv[1:])[0]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    kind = lambda r: "every-flag" if "err" not in r else "random"
    for k in ("random", "every-flag"):
        rs = [r for r in rows if kind(r) == k]
        codes = collections.Counter(r["rc"] for r in rs)
        print(f"{k}: {len(rs)} runs, exit codes " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items()))
              + (f", slowest {max(r['s'] for r in rs):.1f} s" if rs else ""))
    print(f"total: {len(rows)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
