"""The pure half of ``jaxmlp bench --e2e``: reading what a run left behind, statistics over
rounds, ratios, targets, accuracy checks, and the tables (text and markdown).

Nothing here imports JAX or starts a process, so ``scripts/bench_tables.py`` can render a
committed ``e2e.json`` anywhere. Ratios are jaxmlp's wall time over a peer's (lower is better):
the median is the ratio of the medians over rounds, [min-max] the range of the per-round
ratios (jaxmlp and the peer measured in the same round).
"""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from jaxmlp.bench.stats import summary
from jaxmlp.bench.tables_md import DASH, md

#: timing.json keys (written last by ``jaxmlp train``/``sweep``), in table order.
TIMING_KEYS = ("import_s", "data_s", "compile_s", "train_s", "write_s", "plot_s", "total_s")
#: The breakdown's columns: interpreter start-up (wall - total_s), then timing.json's keys.
BREAKDOWN_KEYS = ("startup_s",) + TIMING_KEYS

#: (job, jaxmlp case, peer case, threshold): jaxmlp's wall / the peer's wall <= threshold.
TARGETS = [
    ("train", "jaxmlp_warm", "floor", 1.5),
    ("train", "jaxmlp_warm", "sklearn", 1.0),
    ("train", "jaxmlp_cold", "floor", 2.0),
    ("sweep", "jaxmlp_warm", "sklearn_cores", 0.5),
    ("sweep", "jaxmlp_warm", "pytorch_cores", 0.33),
    ("sweep", "jaxmlp_cold", "sklearn_cores", 0.7),
]
#: A case whose mean test accuracy is further than this from jaxmlp's is flagged.
ACCURACY_TOLERANCE = 0.03
#: Jobs whose test metric is the mean squared error (the others: accuracy), and how far (a
#: fraction of the larger) a peer's may be from jaxmlp's: another initialisation and shuffle.
MSE_JOBS = ("W4",)
MSE_RTOL = 0.25
#: Every job, in report order (``harness.JOBS``).
JOBS = ("train", "sweep", "W1", "W4", "W2")
#: Each in-process workload of ``jaxmlp bench`` and the job that runs it as a whole command.
WORKLOAD_JOBS = {"W1": "W1", "W2": "W2", "W4": "W4", "W3": "sweep"}
MINE = ("jaxmlp_cold", "jaxmlp_warm")


# ------------------------------------------------------------------------------ statistics
def ratio(num_rounds: list[dict], den_rounds: list[dict]) -> dict | None:
    """jaxmlp's wall time over a peer's: the ratio of the medians over the rounds both ran, and
    the range and list of the per-round ratios (rounds paired by their number)."""
    num = {r["round"]: r["wall_s"] for r in num_rounds if r.get("ok")}
    den = {r["round"]: r["wall_s"] for r in den_rounds if r.get("ok")}
    both = sorted(set(num) & set(den))
    if not both:
        return None
    per_round = [num[k] / den[k] for k in both]
    return {"median": statistics.median(num[k] for k in both) /
            statistics.median(den[k] for k in both),
            "min": min(per_round), "max": max(per_round), "rounds": both, "values": per_round}


# ------------------------------------------------------------------------------ reading runs
def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_timing(run_dir) -> dict | None:
    """A run folder's ``timing.json`` (None when absent or unreadable: older jaxmlp versions do
    not write it)."""
    t = _read_json(Path(run_dir) / "timing.json")
    return t if isinstance(t, dict) else None


def read_jaxmlp_run(job: str, run_dir) -> dict:
    """What ``jaxmlp train``/``sweep`` wrote: ``timing`` (timing.json or None), ``reported``
    (compile_s/train_s from summary.json, or the sweep's results.json info with run_s as
    train_s) and ``accuracies`` (test accuracy per model)."""
    run_dir = Path(run_dir)
    out = {"timing": read_timing(run_dir), "reported": {}, "accuracies": []}
    if job != "sweep":
        s = _read_json(run_dir / "summary.json") or {}
        out["reported"] = {k: s[k] for k in ("compile_s", "train_s") if k in s}
        metric = "test_mse" if job in MSE_JOBS else "test_accuracy"
        if s.get(metric) is not None:
            out["accuracies"] = [s[metric]]
        return out
    res = _read_json(run_dir / "results.json")
    if isinstance(res, dict):
        info = res.get("info", {})
        out["reported"] = {k: info[v] for k, v in (("compile_s", "compile_s"), ("train_s", "run_s"))
                           if v in info}
        out["accuracies"] = [r.get("test_accuracy") for r in res.get("rows", [])]
    elif (run_dir / "results.csv").exists():
        with open(run_dir / "results.csv", newline="") as f:
            out["accuracies"] = [float(r["test_accuracy"]) for r in csv.DictReader(f)
                                 if r.get("test_accuracy")]
    out["accuracies"] = [a for a in out["accuracies"] if a is not None]
    return out


def read_peer_result(path) -> dict:
    """What a peer script wrote: one ``test_accuracy`` or ``test_mse`` (a train job) or
    ``models`` (sweep); its own training-loop time is reported as ``train_s``. The test
    metric goes in ``accuracies`` whichever it is (``MSE_JOBS`` say which)."""
    r = _read_json(path) or {}
    if "models" in r:
        accs = [m["test_accuracy"] for m in r["models"]]
        fit = r.get("fits_s")
    else:
        accs = [r[k] for k in ("test_accuracy", "test_mse") if k in r][:1]
        fit = r.get("fit_s")
    return {"timing": None, "reported": {} if fit is None else {"train_s": fit},
            "accuracies": accs}


# ------------------------------------------------------------------------------ analysis
def breakdown(rounds: list[dict]) -> dict:
    """Per breakdown key, the summary over the ok rounds (None where no round has it).
    timing.json gives every key; without it compile_s/train_s come from the run's own
    summary (``reported``) and the rest stay None."""
    ok = [r for r in rounds if r.get("ok")]
    out = {}
    for k in BREAKDOWN_KEYS:
        vals = []
        for r in ok:
            t = r.get("timing")
            if k == "startup_s":
                v = r["wall_s"] - t["total_s"] if t and "total_s" in t else None
            elif t:
                v = t.get(k)
            else:
                v = r.get("reported", {}).get(k)
            vals.append(v)
        out[k] = summary(vals)
    return out


def accuracy_of(rounds: list[dict]) -> dict | None:
    """Best and mean test accuracy (median over the ok rounds of each round's best / mean)."""
    per = [r["accuracies"] for r in rounds if r.get("ok") and r.get("accuracies")]
    if not per:
        return None
    return {"best": statistics.median(max(a) for a in per),
            "mean": statistics.median(statistics.fmean(a) for a in per), "n_models": len(per[0])}


def analyse(report: dict) -> dict:
    """Fill in ``report``'s per-case statistics, ``ratios``, ``targets`` and
    ``accuracy_checks`` from the raw rounds; returns the report."""
    cases = report["cases"]
    for c in cases.values():
        c["wall_s"] = summary(r["wall_s"] for r in c["rounds"] if r.get("ok"))
        c["breakdown"] = breakdown(c["rounds"])
        c["accuracy"] = accuracy_of(c["rounds"])
    report["ratios"] = {}
    for job in JOBS:
        names = [c["name"] for c in cases.values() if c["job"] == job]
        rs = {}
        for mine in MINE:
            if mine not in names:
                continue
            for peer in names:
                if peer in MINE:
                    continue
                r = ratio(cases[f"{job}/{mine}"]["rounds"], cases[f"{job}/{peer}"]["rounds"])
                if r:
                    rs[f"{mine}/{peer}"] = r
        if rs:
            report["ratios"][job] = rs
    report["targets"] = evaluate_targets(report["ratios"], {c["job"] for c in cases.values()})
    report["accuracy_checks"] = accuracy_checks(cases, counted=not report["meta"].get("quick"))
    return report


def evaluate_targets(ratios: dict, jobs=("train", "sweep")) -> list[dict]:
    """The targets of ``jobs``, each with its measured ratio (median) and ``met`` (None: one of
    its two cases was not run)."""
    out = []
    for job, mine, peer, thr in TARGETS:
        if job not in jobs:
            continue
        r = ratios.get(job, {}).get(f"{mine}/{peer}")
        val = r["median"] if r else None
        out.append({"target": f"{job}: {mine} <= {thr:g}x {peer}", "job": job, "jaxmlp": mine,
                    "peer": peer, "threshold": thr, "measured": val,
                    "met": None if val is None else val <= thr})
    return out


def accuracy_checks(cases: dict, counted: bool = True) -> list[dict]:
    """Each case's mean test accuracy against jaxmlp's (the warm case, else the cold one) in
    the same job: ``passed`` when within ``ACCURACY_TOLERANCE`` (test MSE, ``MSE_JOBS``:
    within ``MSE_RTOL`` of the larger). Different initial weights and shuffles, so they agree
    within a few points, not to round-off."""
    out = []
    for job in JOBS:
        ref = next((cases[f"{job}/{m}"] for m in ("jaxmlp_warm", "jaxmlp_cold")
                    if f"{job}/{m}" in cases and cases[f"{job}/{m}"].get("accuracy")), None)
        if ref is None:
            continue
        for c in cases.values():
            if c["job"] != job or c is ref or not c.get("accuracy"):
                continue
            a, b = ref["accuracy"]["mean"], c["accuracy"]["mean"]
            tol = MSE_RTOL * max(abs(a), abs(b)) if job in MSE_JOBS else ACCURACY_TOLERANCE
            out.append({"job": job, "case": c["name"], "reference": ref["name"], "jaxmlp_mean": a,
                        "peer_mean": b, "difference": b - a, "tolerance": tol,
                        "metric": "test_mse" if job in MSE_JOBS else "test_accuracy",
                        "passed": abs(b - a) <= tol, "counted": counted})
    return out


# ------------------------------------------------------------------------------ tables
def fmt_range(s: dict | None, prec: int = 2, unit: str = "") -> str:
    if not s:
        return DASH
    return (f"{s['median']:.{prec}f}{unit} [{s['min']:.{prec}f}{DASH}{s['max']:.{prec}f}]"
            if s["min"] != s["max"] else f"{s['median']:.{prec}f}{unit}")


def _fmt(s: dict | None, prec: int = 2) -> str:
    return DASH if not s else f"{s['median']:.{prec}f}"


def case_table(report: dict, job: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one job's case table (wall time, breakdown medians, accuracy)."""
    head = ["case", "wall s, median [min\u2013max]", "start-up", "import", "data", "compile",
            "train", "write", "plot", "total", "test acc best / mean (or MSE)"]
    rows = []
    for c in report["cases"].values():
        if c["job"] != job:
            continue
        b = c.get("breakdown", {})
        acc = c.get("accuracy")
        accs = (DASH if not acc else f"{acc['mean']:.5f} (MSE)" if job in MSE_JOBS
                else f"{acc['best']:.4f} / {acc['mean']:.4f}")
        wall = fmt_range(c.get("wall_s")) if c.get("wall_s") else "failed: " + _error(c)
        rows.append([c["label"], wall, *(_fmt(b.get(k)) for k in BREAKDOWN_KEYS), accs])
    return head, rows


def _error(c: dict) -> str:
    errs = [r.get("error", "") for r in c["rounds"] if not r.get("ok")]
    return (errs[0] if errs else "not run")[:80]


def ratio_table(report: dict, job: str) -> tuple[list[str], list[list[str]]]:
    head = ["ratio of wall times", "median [min\u2013max]", "target", "status"]
    targets = {(t["jaxmlp"], t["peer"]): t for t in report.get("targets", []) if t["job"] == job}
    rows = []
    for key, r in report.get("ratios", {}).get(job, {}).items():
        mine, peer = key.split("/")
        t = targets.get((mine, peer))
        rows.append([f"{mine} / {peer}", fmt_range(r, 2, "x"),
                     f"<= {t['threshold']:g}x" if t else "",
                     ("met" if t["met"] else "MISSED") if t else ""])
    for (mine, peer), t in targets.items():
        if t["met"] is None:
            rows.append([f"{mine} / {peer}", DASH, f"<= {t['threshold']:g}x", "n/a (not run)"])
    return head, rows


def _markdown(head, rows) -> str:
    return md(head, rows).rstrip("\n")


def _text(head, rows) -> str:
    w = [max(len(x) for x in col) for col in zip(head, *rows)]
    return "\n".join("  " + "  ".join(x.ljust(n) for x, n in zip(r, w)).rstrip()
                     for r in [head, *rows])


def render(report: dict, markdown: bool = False) -> str:
    """The whole report as text (``markdown=False``) or as markdown for BENCHMARKS.md."""
    fmt = _markdown if markdown else _text
    meta = report["meta"]
    out = []
    for job, desc in meta.get("jobs", {}).items():
        if not any(c["job"] == job for c in report["cases"].values()):
            continue
        desc = desc.removeprefix(f"{job}: ")  # (a description may name its job itself)
        out.append(f"{'### ' if markdown else ''}{job}: {desc}")
        out.append("")
        out.append(fmt(*case_table(report, job)))
        if report.get("ratios", {}).get(job) or any(t["job"] == job for t in report["targets"]):
            out.append("")
            out.append(fmt(*ratio_table(report, job)))
        out.append("")
    checks = report.get("accuracy_checks", [])
    flagged = [c for c in checks if not c["passed"]]
    if checks:
        out.append(f"accuracy check (mean test accuracy within {ACCURACY_TOLERANCE * 100:g} points "
                   f"of jaxmlp's; test MSE within {MSE_RTOL:.0%}): "
                   + ("all agree" if not flagged else "FLAGGED " + ", ".join(
                       f"{c['job']}/{c['case']} {c['peer_mean']:.4f} vs {c['jaxmlp_mean']:.4f}"
                       + ("" if c["counted"] else " (quick: not counted)") for c in flagged)))
    tg = report.get("targets", [])
    if tg:
        n_met = sum(t["met"] is True for t in tg)
        n_missed = sum(t["met"] is False for t in tg)
        out.append(f"targets: {n_met} met, {n_missed} MISSED, {len(tg) - n_met - n_missed} n/a"
                   + ("" if not n_missed else " (" + "; ".join(
                       f"{t['target']}: {t['measured']:.2f}x" for t in tg if t["met"] is False)
                       + ")"))
    m = meta.get("machine", {})
    out.append(f"{meta.get('rounds')} interleaved round(s) after one untimed warm-up run of every "
               f"case; wall time from spawn to exit; breakdown medians in s (start-up = wall - "
               f"timing.json's total_s; {DASH} = not recorded); {m.get('Model name', '')} "
               f"{m.get('cpu_count', '')} cores, python {m.get('python', '')}"
               + (" (quick mode)" if meta.get("quick") else ""))
    return "\n".join(out).rstrip() + "\n"
