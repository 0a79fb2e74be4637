"""``jaxmlp watch RUN_DIR``: a running or finished run's progress and curves, read from its
folder only (config.json, metrics.jsonl, steps.jsonl, summary.json), so it works from another
terminal or machine while the run writes, and on runs of earlier versions. No JAX import.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from jaxmlp.errors import CheckpointError

SPARKS = "▁▂▃▄▅▆▇█"


def _jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file (a line being written is skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def sparkline(values, width: int = 40) -> str:
    """``values`` (None/NaN skipped) as one line of block characters, low to high, resampled
    to at most ``width`` characters (each the mean of its share of the values)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return ""
    if len(vals) > width:
        edges = [round(i * len(vals) / width) for i in range(width + 1)]
        vals = [sum(vals[a:b]) / (b - a) for a, b in zip(edges[:-1], edges[1:])]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - lo) / span * len(SPARKS)))] for v in vals)


def snapshot(run_dir) -> dict:
    """What the folder says now: total epochs, per-epoch rows, step reports, the summary."""
    d = Path(run_dir)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.json)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        summary = (json.loads((d / "summary.json").read_text(encoding="utf-8"))
                   if (d / "summary.json").is_file() else None)
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{run_dir}: unreadable run files ({type(e).__name__})") from None
    return {"config": cfg, "epochs": int(cfg.get("train", {}).get("epochs", 0)),
            "rows": _jsonl(d / "metrics.jsonl"), "steps": _jsonl(d / "steps.jsonl"),
            "summary": summary}


def render(snap: dict, width: int = 40) -> str:
    """The text ``jaxmlp watch`` prints for a ``snapshot``."""
    rows, steps, summary, total = snap["rows"], snap["steps"], snap["summary"], snap["epochs"]
    done = rows[-1]["epoch"] if rows else 0
    at = max(done, steps[-1]["epoch"] if steps else 0)
    state = "finished" if summary is not None else "running (or stopped)"
    cfg = snap["config"]
    lines = [f"{cfg.get('data', {}).get('dataset', '?')} {cfg.get('model', {}).get('hidden', '')}: "
             f"{state}, epoch {at:g} of {total} ({100 * at / max(total, 1):.0f}%)"]
    if steps:
        s = steps[-1]
        lines.append(f"last step report: step {s['step']}, loss {s['loss']}, {s['time_s']} s "
                     "into training")
        lines.append(f"step loss     {sparkline([r['loss'] for r in steps], width)}")
    for key in ("train_loss", "val_loss", "val_accuracy", "val_mse", "test_accuracy", "test_mse"):
        vals = [r.get(key) for r in rows]
        if any(v is not None for v in vals):
            last = next((v for v in reversed(vals) if v is not None), None)
            lines.append(f"{key:<13} {sparkline(vals, width)}  last {last:.4f}")
    if summary is not None:
        keys = [k for k in ("test_accuracy", "test_mse", "test_loss", "train_s", "compile_s")
                if k in summary]
        lines.append("summary: " + ", ".join(f"{k}={summary[k]:.4g}" for k in keys))
    return "\n".join(lines)


def watch(run_dir, *, follow: bool = False, interval: float = 1.0, out=print) -> dict:
    """Print the run's state; with ``follow``, again every ``interval`` seconds while it
    changes, until its summary appears. Returns the last snapshot."""
    snap = snapshot(run_dir)
    out(render(snap))
    last = (len(snap["rows"]), len(snap["steps"]))
    while follow and snap["summary"] is None:
        time.sleep(interval)
        snap = snapshot(run_dir)
        now = (len(snap["rows"]), len(snap["steps"]))
        if now != last or snap["summary"] is not None:
            out("")
            out(render(snap))
            last = now
    return snap
