#!/usr/bin/env python
"""Same-run A/B of the compiled training loop between two commits of jaxmlp.

Both sides run the same workloads (W1, W2, W4 of ``jaxmlp bench``: their definitions are read
from this checkout) through the public API only (``jaxmlp.fit`` on the same arrays), each fit
in a fresh child process per round with ``PYTHONPATH`` pointing at that side's source tree;
rounds alternate which side goes first. Per fit: one untimed call (compile + warm-up), then
``--reps`` timed calls; the figure is ``history["final"]["train_s"]`` (the training loop only,
as in ``jaxmlp bench``). The final training losses of the two sides are compared too: a
refactor that leaves the programs alone gives the same numbers.

    python scripts/ab_bench.py --base e906d43 --out docs/bench/ab_e906d43.json
    python scripts/ab_bench.py --base e906d43 --commands --out docs/bench/ab_cmd_e906d43.json

``--commands`` compares whole commands instead, in fresh processes: the README's default
``jaxmlp train`` and the W3 ``jaxmlp sweep`` of ``jaxmlp bench --e2e``; each round, per side
and command, one run with an empty compile cache then one with the cache it filled, alternating
sides; figures from each run's ``timing.json`` and its wall time.
    python scripts/bench_tables.py --ab docs/bench/ab_e906d43.json   # the markdown table

The base side is checked out with ``git worktree`` into a temporary folder (removed at the end).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np
import jax, jaxmlp
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits, make_car_sensor, make_teacher
w, reps = json.loads(sys.argv[1]), int(sys.argv[2])
if w["dataset"] == "digits":
    s = load_splits(DataConfig(dataset="digits")); X, y = s.X_train, s.y_train
elif w["dataset"] == "teacher":
    ds = make_teacher(w["n_rows"], 784, 10); X, y = ds.X, ds.y
else:
    ds = make_car_sensor(w["n_rows"]); X, y = ds.X, ds.y
model = ModelConfig(hidden=tuple(w["hidden"]), activation="tanh")
train = TrainConfig(lr=w["lr"], batch_size=w["batch_size"], epochs=w["epochs"], seed=w["seed"])
t0 = time.perf_counter()
p, h = jaxmlp.fit((X, y), model=model, train=train)
jax.block_until_ready(p)
first = time.perf_counter() - t0
out = {"first_fit_s": first, "compile_s": h["final"]["compile_s"], "train_s": [],
       "train_loss": float(h["train_loss"][-1]), "jaxmlp_file": jaxmlp.__file__}
for _ in range(reps):
    p, h = jaxmlp.fit((X, y), model=model, train=train)
    jax.block_until_ready(p)
    out["train_s"].append(h["final"]["train_s"])
print("AB-RESULT " + json.dumps(out))
"""


def _git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _child(src: Path, workload: dict, reps: int, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "JAXMLP_COMPILE_CACHE": "off"}
    env.pop("XLA_FLAGS", None)
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(workload), str(reps)],
                       env=env, capture_output=True, text=True, cwd=cache, timeout=1800)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("AB-RESULT ")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"child failed ({src}):\n{p.stderr[-3000:]}")
    res = json.loads(line[-1][len("AB-RESULT "):])
    if not Path(res["jaxmlp_file"]).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"child imported {res['jaxmlp_file']}, not the tree under {src}")
    return res


def _argv(job: str) -> list[str]:
    from jaxmlp.bench.e2e.harness import SWEEP_GRID  # the e2e benchmark's W3 grid
    return ["train"] if job == "train" else ["sweep", *SWEEP_GRID, "--epochs", "50"]


def _command(src: Path, work: Path, job: str) -> dict:
    """``jaxmlp JOB`` from ``src`` with an empty compile cache, then with the cache it filled."""
    env = {**os.environ, "PYTHONPATH": str(src), "JAXMLP_COMPILE_CACHE": str(work / "cache")}
    env.pop("XLA_FLAGS", None)
    out = {}
    for mode in ("cold", "warm"):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "jaxmlp.cli", *_argv(job), "--quiet", "--out",
                            str(work / mode)], env=env, cwd=work, capture_output=True,
                           text=True, timeout=600)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"jaxmlp {job} failed ({src}):\n{p.stderr[-3000:]}")
        timing = json.loads((work / mode / "timing.json").read_text())
        out[mode] = {"wall_s": wall, **{k: timing[k] for k in
                                        ("import_s", "compile_s", "train_s", "plot_s",
                                         "total_s", "compiled")}}
    return out


def _commands(sides: dict, rounds: int, tmp: Path) -> dict:
    out = {}
    for job in ("train", "sweep"):
        raw = {s: [] for s in sides}
        for r in range(rounds):
            for s in (["base", "head"] if r % 2 == 0 else ["head", "base"]):
                work = tmp / f"{job}_{s}_{r}"
                work.mkdir()
                raw[s].append(_command(sides[s], work, job))
                print(f"round {r + 1} {job} {s}: " + ", ".join(
                    f"{m} wall {v['wall_s']:.3f} s (compile {v['compile_s']:.3f})"
                    for m, v in raw[s][-1].items()), flush=True)
        med = lambda s, m, k: statistics.median(x[m][k] for x in raw[s])
        out[job] = {"raw": raw, "median": {
            s: {m: {k: med(s, m, k) for k in ("wall_s", "import_s", "compile_s", "train_s",
                                              "plot_s", "total_s")} for m in ("cold", "warm")}
            for s in sides}}
    return out


def _summary(runs: list[dict]) -> dict:
    times = [t for r in runs for t in r["train_s"]]
    return {"train_s_median": statistics.median(times), "train_s_min": min(times),
            "train_s_max": max(times), "n": len(times),
            "compile_s_median": statistics.median(r["compile_s"] for r in runs),
            "train_loss": sorted({r["train_loss"] for r in runs})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the commit to compare this checkout with")
    ap.add_argument("--workloads", default="W1,W2,W4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="timed fits per child process")
    ap.add_argument("--commands", action="store_true",
                    help="compare whole `jaxmlp train` commands (cold and warm) instead")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from jaxmlp.bench.workloads import workload_configs  # noqa: E402
    configs = workload_configs(quick=False)
    names = a.workloads.split(",")
    base_rev, head_rev = _git("rev-parse", a.base), _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "jaxmlp"))
    with tempfile.TemporaryDirectory(prefix="jaxmlp-ab-") as tmp:
        base_src = Path(tmp) / "base"
        _git("worktree", "add", "--detach", str(base_src), base_rev)
        try:
            sides = {"base": base_src, "head": ROOT}
            if a.commands:
                commands = _commands(sides, a.rounds, Path(tmp))
                names = []
            raw = {w: {s: [] for s in sides} for w in names}
            for r in range(a.rounds):
                order = ["base", "head"] if r % 2 == 0 else ["head", "base"]
                for w in names:
                    for s in order:
                        res = _child(sides[s], configs[w], a.reps, Path(tmp))
                        raw[w][s].append(res)
                        print(f"round {r + 1} {w} {s}: train_s "
                              + " ".join(f"{t:.4f}" for t in res["train_s"]), flush=True)
        finally:
            _git("worktree", "remove", "--force", str(base_src))
    report = {"meta": {"base": base_rev, "head": head_rev, "head_dirty": dirty,
                       "rounds": a.rounds, "reps": a.reps, "machine": platform.processor()
                       or platform.machine(), "cpu_count": os.cpu_count(),
                       "cpu_model": _cpu_model(), "python": platform.python_version(),
                       "command": "python scripts/ab_bench.py " + " ".join(argv or sys.argv[1:])},
              "workloads": {w: {"name": configs[w]["name"], "raw": raw[w],
                                "base": _summary(raw[w]["base"]),
                                "head": _summary(raw[w]["head"])} for w in names}}
    if a.commands:
        report["commands"] = commands
    from jaxmlp.bench.raw import write_report
    write_report(a.out, report)
    for job, res in (commands.items() if a.commands else ()):
        for m in ("cold", "warm"):
            b, h = (res["median"][s][m]["wall_s"] for s in ("base", "head"))
            print(f"jaxmlp {job}, {m}: base {b:.3f} s, head {h:.3f} s (head/base {h / b:.3f})")
    for w in names:
        b, h = report["workloads"][w]["base"], report["workloads"][w]["head"]
        print(f"{w}: base {b['train_s_median']:.4f} s, head {h['train_s_median']:.4f} s "
              f"(head/base {h['train_s_median'] / b['train_s_median']:.3f}); "
              f"losses {'equal' if b['train_loss'] == h['train_loss'] else 'DIFFER'}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
