"""Shared helpers for the experiment scripts: argument parsing, output folder, result files.

Every study writes into its out dir (default ``experiments/out/<name>/``):

- ``<table>.csv`` files with the raw measured rows,
- ``summary.json``: ``{"name", "quick", "headline", "claims": {...}, "table": {"columns",
  "rows"}, "figures": [...]}``, the README table that ``scripts/run_experiments.py`` renders
  between ``<!-- results:<name> -->`` markers, and the numbers the tests check,
- PNG figures.

Nothing here re-implements library maths; the studies call ``jaxmlp`` directly.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

EXPERIMENTS_DIR = Path(__file__).resolve().parent
OUT_ROOT = EXPERIMENTS_DIR / "out"


def parse_args(name: str, argv: Sequence[str] | None, doc: str | None = None,
               extra=None) -> argparse.Namespace:
    """``--quick`` and ``--out DIR`` (default ``experiments/out/<name>/``)."""
    p = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc)
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for tests")
    p.add_argument("--out", default=None, help=f"output folder (default experiments/out/{name}/)")
    if extra is not None:
        extra(p)
    args = p.parse_args(list(argv) if argv is not None else None)
    args.out = Path(args.out) if args.out else OUT_ROOT / name
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def _clean(v):
    """JSON-safe scalars (numpy -> python; NaN/inf -> None)."""
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    return v


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Rows (dicts) to CSV; columns are the union of keys in first-seen order."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _clean(r.get(k)) for k in cols})
    return path


def save_fig(fig, path: Path, dpi: int = 90) -> Path:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def fmt(v, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format(float(v), spec)
    return str(v)


def pm(mean: float, std: float, spec: str = ".4f") -> str:
    """``mean ± std`` as text."""
    return f"{format(float(mean), spec)} ± {format(float(std), spec)}"


def finish(name: str, args, *, headline: str, claims: dict, columns: list[str],
           rows: list[list], figures: list[str], extra: dict | None = None,
           t0: float | None = None, more_tables: list[dict] | None = None) -> dict:
    """Write ``summary.json``, print the headline, return the summary dict.

    ``more_tables``: further README tables, each ``{"title", "columns", "rows"}``.
    """
    tables = [{"title": "", "columns": columns, "rows": rows}] + list(more_tables or [])
    tables = [{"title": t.get("title", ""), "columns": list(t["columns"]),
               "rows": [[str(c) for c in r] for r in t["rows"]]} for t in tables]
    summary = {"name": name, "quick": bool(args.quick), "headline": headline,
               "claims": _clean(claims), "table": tables[0], "tables": tables,
               "figures": figures, "wall_s": None if t0 is None else round(time.time() - t0, 1)}
    if extra:
        summary.update(_clean(extra))
    with open(Path(args.out) / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    print(f"[{name}] {headline}")
    return summary


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def mean_std(values) -> tuple[float, float]:
    a = np.asarray(values, float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0
