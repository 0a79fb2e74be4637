"""``jaxmlp bench --e2e``: time to result of whole commands, against peers doing the same job.

    jaxmlp bench --e2e                          # every case, 3 interleaved rounds
    jaxmlp bench --e2e --quick --cases train    # 2 epochs, 1 round, the train job only
    python scripts/bench.py --e2e --rounds 5 --cases train/jaxmlp_warm,train/floor --out DIR

Every case is a whole command in a fresh process (python start-up, imports, data, compiles,
training, files, plots), timed by this harness from spawn to exit. One untimed warm-up run of
every case comes first (it warms the OS file cache for every framework alike, and fills the
warm compile cache), then the rounds: every case once per round, always in the same order.
Writes ``OUT/e2e.json`` (every per-round value, the commands, versions, the machine) and prints
the tables that ``scripts/bench_tables.py --e2e OUT/e2e.json`` renders as markdown.

Jobs and cases (``--cases`` takes job names and/or ``job/case``):

* ``train``: the README's default job (digits 64-128-10 tanh, SGD lr 0.1, batch 128, 50 epochs,
  cross-entropy, train/val/test split). ``jaxmlp_cold``: ``jaxmlp train --out DIR`` with
  ``JAXMLP_COMPILE_CACHE`` a fresh empty folder every run; ``jaxmlp_warm``: the same with a
  cache folder filled by the warm-up run; ``sklearn`` / ``pytorch``: the user scripts in
  ``jaxmlp/bench/e2e/peers``; ``jax_script``: the job as a plain JAX script (a jitted step
  called from Python loops, ``peers/train_jax.py``: what the job costs JAX without jaxmlp's
  per-epoch evaluation and bookkeeping); ``floor``: ``python -c "import jax; jax.numpy.zeros(1)"``.
* ``sweep``: W3's grid, 64 models (widths 16,32,64,128 x lr 0.01,0.03,0.1,0.3 x 4 seeds, 50
  epochs). ``jaxmlp_cold`` / ``jaxmlp_warm``: ``jaxmlp sweep ...`` as above; ``sklearn``: 64
  fits in a loop in one process; ``sklearn_cores``: a joblib worker process per core, one BLAS
  thread each; ``pytorch``: one process, 1 intra-op thread; ``pytorch_cores``: a joblib worker
  process per core, 1 thread each. The PyTorch cases run only where torch is installed.
* ``W1``, ``W4``, ``W2``: the in-process benchmark's training workloads as whole commands
  (``jaxmlp_cold``, ``jaxmlp_warm``, ``sklearn``, ``pytorch``; W1 also ``jax_script``): W1 is the train job at 100
  epochs; W4 (car-sensor, 8-64-2, MSE, 10 epochs) and W2 (teacher 784-512-512-10, 1 epoch)
  read a ``.npz`` the harness writes before the warm-up (untimed, one file for every
  framework: ``FILE_JOBS``), split 80/20 with no validation rows, so that they train on as
  many rows as the in-process workloads; the peers are ``train_file_{sklearn,pytorch}.py``.

PyTorch's single-process sweep uses 1 thread: on the 2-core development machine (one-off, on a
shared machine) the 64 fits took 6.9 s with 1 thread and 78 s with PyTorch's default 2.
scikit-learn's single-process sweep keeps OpenBLAS's default threads, as a user's script does;
it is just as sensitive to other load (6.9 s quiet, 47-94 s with the load average at 4).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaxmlp.bench.e2e import results

PEERS = Path(__file__).resolve().parent / "peers"
REPO = Path(__file__).resolve().parents[3]  # the folder holding the jaxmlp under test
JOBS = results.JOBS
SWEEP_GRID = ["--width", "16,32,64,128", "--lr", "0.01,0.03,0.1,0.3", "--seeds", "4"]
FLOOR = "import jax; jax.numpy.zeros(1)"
#: The file-based jobs (``write_job_data`` generates their .npz): rows written, task, hidden
#: widths, and what they train (the in-process workload's training rows are 80% of the rows).
FILE_JOBS = {
    "W4": {"rows": 125_000, "quick_rows": 5_000, "task": "regression", "hidden": "64",
           "what": "car-sensor 8-64-2 tanh, MSE, SGD lr 0.1, batch 128, {e} epochs, "
                   "{n:,} rows split 80/20 (W4's {t:,} training rows)"},
    "W2": {"rows": 250_000, "quick_rows": 5_000, "task": "classification", "hidden": "512,512",
           "what": "teacher 784-512-512-10 tanh, cross-entropy, SGD lr 0.1, batch 128, {e} epoch(s), "
                   "{n:,} rows split 80/20 (W2's {t:,} training rows)"},
}


def job_epochs(quick: bool) -> dict:
    """Epochs of every job (a quick run: 2, W2 1)."""
    if quick:
        return {"train": 2, "sweep": 2, "W1": 2, "W4": 2, "W2": 1}
    return {"train": 50, "sweep": 50, "W1": 100, "W4": 10, "W2": 1}


def write_job_data(job: str, folder: Path, quick: bool) -> Path:
    """The .npz a file-based job reads (``X``, ``y``), written once per run, untimed."""
    import numpy as np

    from jaxmlp.data import make_car_sensor, make_teacher
    spec = FILE_JOBS[job]
    n = spec["quick_rows"] if quick else spec["rows"]
    ds = make_car_sensor(n) if job == "W4" else make_teacher(n, 784, 10)
    path = folder / f"{job}.npz"
    np.savez(path, X=np.asarray(ds.X, np.float32), y=np.asarray(ds.y))
    return path


def case_specs(epochs: dict, cores: int) -> dict[str, dict]:
    """Every case by ``job/name``, in run order: label, framework, argv template (``{python}``,
    ``{out}``, ``{peers}``, ``{data}`` are filled in per run) and compile cache (``fresh``,
    ``warm``)."""
    py, jm = "{python}", ["{python}", "-m", "jaxmlp.cli"]
    se = ["--epochs", str(epochs["sweep"])]

    def digits(job):  # the default job: jaxmlp train and the digits peer scripts
        ep = ["--epochs", str(epochs[job])]
        return _train_rows(job, [*jm, "train", *ep, "--out", "{out}"],
                           lambda fw: [py, f"{{peers}}/train_{fw}.py", *ep, "--out", "{out}"],
                           plain_jax=True)
    rows = [
        *digits("train"),
        ("train", "floor", "jax", "floor: import jax, one array", [py, "-c", FLOOR], None),
        ("sweep", "jaxmlp_cold", "jaxmlp", "jaxmlp sweep, empty compile cache",
         [*jm, "sweep", *SWEEP_GRID, *se, "--out", "{out}"], "fresh"),
        ("sweep", "jaxmlp_warm", "jaxmlp", "jaxmlp sweep, filled compile cache",
         [*jm, "sweep", *SWEEP_GRID, *se, "--out", "{out}"], "warm"),
        ("sweep", "sklearn", "sklearn", "scikit-learn, 64 fits in one process",
         [py, "{peers}/sweep_sklearn.py", *se, "--jobs", "1", "--out", "{out}"], None),
        ("sweep", "sklearn_cores", "sklearn", f"scikit-learn, {cores} processes x 1 thread",
         [py, "{peers}/sweep_sklearn.py", *se, "--jobs", str(cores), "--out", "{out}"], None),
        ("sweep", "pytorch", "pytorch", "PyTorch eager, one process, 1 thread",
         [py, "{peers}/sweep_pytorch.py", *se, "--jobs", "1", "--threads", "1", "--out", "{out}"],
         None),
        ("sweep", "pytorch_cores", "pytorch", f"PyTorch eager, {cores} processes x 1 thread",
         [py, "{peers}/sweep_pytorch.py", *se, "--jobs", str(cores), "--out", "{out}"], None),
        *digits("W1"),
    ]
    for job, spec in FILE_JOBS.items():
        data, ep = f"{{data}}/{job}.npz", ["--epochs", str(epochs[job])]
        task, hid = ["--task", spec["task"]], ["--hidden", spec["hidden"]]
        rows += _train_rows(job, [*jm, "train", "--dataset", data, *task, "--val-fraction", "0",
                                  "--test-fraction", "0.2", *hid, *ep, "--out", "{out}"],
                            lambda fw: [py, f"{{peers}}/train_file_{fw}.py", "--data", data,
                                        *task, *hid, *ep, "--out", "{out}"])
    return {f"{job}/{name}": {"job": job, "name": name, "framework": fw, "label": label,
                              "argv": argv, "compile_cache": cache}
            for job, name, fw, label, argv, cache in rows}


def _train_rows(job: str, mine: list, peer, plain_jax: bool = False) -> list[tuple]:
    """A one-model job's cases: ``mine`` (jaxmlp's argv) with an empty and a filled compile
    cache, and each peer's script (``peer(framework)`` -> argv); with ``plain_jax``, also the
    plain JAX script (``peers/train_jax.py``: a jitted step called from Python loops)."""
    rows = [(job, "jaxmlp_cold", "jaxmlp", "jaxmlp train, empty compile cache", mine, "fresh"),
            (job, "jaxmlp_warm", "jaxmlp", "jaxmlp train, filled compile cache", mine, "warm"),
            (job, "sklearn", "sklearn", "scikit-learn script", peer("sklearn"), None),
            (job, "pytorch", "pytorch", "PyTorch eager script", peer("pytorch"), None)]
    if plain_jax:
        rows.append((job, "jax_script", "jax", "plain JAX script (jitted step, Python loops)",
                     peer("jax"), None))
    return rows


def command_line(spec: dict) -> str:
    """The case's command as a shell line, with its compile-cache variable."""
    env = {"fresh": "JAXMLP_COMPILE_CACHE={a new empty folder per run} ",
           "warm": "JAXMLP_COMPILE_CACHE={the folder the warm-up run filled} "}
    return env.get(spec["compile_cache"], "") + " ".join(
        f'"{a}"' if " " in a else a for a in spec["argv"])


def select_cases(specs: dict, text: str | None) -> list[str]:
    """The case keys ``--cases`` names (job names and/or ``job/case``), in run order."""
    if not text:
        return list(specs)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in wanted if w not in specs and w not in JOBS]
    if bad or not wanted:
        raise ValueError(f"unknown case(s) {bad or [text]}; choose from {', '.join(JOBS)} or "
                         f"{', '.join(specs)}")
    return [k for k in specs if k in wanted or specs[k]["job"] in wanted]


def child_env(spec: dict, cache: Path | None) -> dict:
    """The parent's environment without a compile cache of its own; jaxmlp runs get theirs and
    import the jaxmlp under test."""
    env = {k: v for k, v in os.environ.items() if k != "JAXMLP_COMPILE_CACHE"}
    if spec["framework"] == "jaxmlp":
        env["JAXMLP_COMPILE_CACHE"] = str(cache)
        if (REPO / "pyproject.toml").exists():  # a checkout (an installed jaxmlp is found anyway)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_once(spec: dict, work: Path, tag: str, timeout: float) -> dict:
    """Run one case once; the record of that run (wall time, exit code, what it wrote)."""
    job, name = spec["job"], spec["name"]
    out = work / "runs" / f"{job}_{name}_{tag}{'' if spec['framework'] == 'jaxmlp' else '.json'}"
    cache = None
    if spec["compile_cache"] == "fresh":
        cache = work / "caches" / f"{job}_{name}_{tag}"
        cache.mkdir(mode=0o700, parents=True)
    elif spec["compile_cache"] == "warm":
        cache = work / "caches" / f"{job}_warm"
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [a.format(python=sys.executable, out=out, peers=PEERS, data=work / "data")
            for a in spec["argv"]]
    env = child_env(spec, cache)
    rec = {"loadavg_1min": os.getloadavg()[0]}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**rec, "ok": False, "wall_s": None, "error": f"timed out after {timeout:.0f} s"}
    rec.update(wall_s=time.perf_counter() - t0, rc=p.returncode, ok=p.returncode == 0)
    if p.returncode != 0:
        lines = (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()
        rec["error"] = f"exit {p.returncode}: {lines[-1][:300]}"
    if spec["framework"] == "jaxmlp":
        rec.update(results.read_jaxmlp_run(job, out))
    elif name != "floor":
        rec.update(results.read_peer_result(out))
    if rec["ok"] and name != "floor" and not rec.get("accuracies"):
        rec.update(ok=False, error="no test accuracy written")
    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    if spec["compile_cache"] == "fresh":
        shutil.rmtree(cache, ignore_errors=True)
    return rec


def _show(tag: str, key: str, rec: dict) -> None:
    what = f"{rec['wall_s']:6.2f} s" if rec.get("wall_s") is not None else "      -"
    print(f"  {tag:<9} {key:<20} {what}  {'ok' if rec['ok'] else 'FAILED ' + rec['error']}",
          flush=True)


def parse_args(argv):
    from jaxmlp.bench.args import OneLineParser
    p = OneLineParser(prog="jaxmlp bench --e2e", allow_abbrev=False,
                       description="Time to result of whole commands (fresh processes, "
                                   "interleaved rounds) against peers doing the same job.")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; "
                                                            "--quick: 1)")
    p.add_argument("--quick", action="store_true",
                   help="2 epochs per model, 1 round (a smoke test)")
    p.add_argument("--cases", default=None,
                   help="comma list of jobs (train, sweep) and/or job/case, e.g. "
                        "train/floor,train/jaxmlp_warm (default: all)")
    p.add_argument("--out", default="bench_out", help="output folder (writes e2e.json)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark; 0 when every run of every case succeeded (and, outside --quick, the
    accuracies agree), 1 otherwise, 2 for bad arguments."""
    from jaxmlp.bench.machine import torch_available
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    if rounds < 1:
        print(f"error: jaxmlp bench --e2e: --rounds must be >= 1, got {rounds}", file=sys.stderr)
        return 2
    epochs = job_epochs(a.quick)
    cores = os.cpu_count() or 1
    specs = case_specs(epochs, cores)
    try:
        keys = select_cases(specs, a.cases)
    except ValueError as e:
        print(f"error: jaxmlp bench --e2e: {e}", file=sys.stderr)
        return 2
    notes = []
    torch_msg = "not requested"
    if any(specs[k]["framework"] == "pytorch" for k in keys):
        have, torch_msg = torch_available()
        if not have:
            keys = [k for k in keys if specs[k]["framework"] != "pytorch"]
            notes.append(f"PyTorch cases skipped: {torch_msg}")
            print(f"note: PyTorch cases skipped: {torch_msg}")
    report = {"meta": _meta(argv, a.quick, rounds, epochs, cores, torch_msg, notes),
              "cases": {k: {**specs[k], "command": command_line(specs[k]), "warmup": None,
                            "rounds": []} for k in keys}}
    print(f"jaxmlp bench --e2e: {len(keys)} cases, 1 warm-up + {rounds} round(s)"
          f"{' (quick)' if a.quick else ''}", flush=True)
    t_start = time.time()
    _run_cases(report, specs, keys, rounds, a.timeout, notes, a.quick)
    report["meta"]["elapsed_s"] = time.time() - t_start
    results.analyse(report)
    print()
    print(results.render(report), end="")
    for n in notes:
        print(f"note: {n}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "e2e.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {out / 'e2e.json'} ({report['meta']['elapsed_s']:.0f} s)")
    all_ran = all(c["warmup"]["ok"] and all(r["ok"] for r in c["rounds"])
                  for c in report["cases"].values())
    agree = all(c["passed"] for c in report["accuracy_checks"] if c["counted"])
    return 0 if all_ran and agree else 1


def _meta(argv, quick, rounds, epochs, cores, torch_msg, notes) -> dict:
    """The report's ``meta``: arguments, machine, what the jobs are and how they are timed."""
    from jaxmlp.bench.machine import machine_info
    return {
        "argv": argv, "quick": quick, "rounds": rounds, "epochs": epochs, "cpu_count": cores,
        "python": sys.executable, "machine": machine_info(), "torch": torch_msg,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "jobs": job_descriptions(epochs, quick),
        "workloads": results.WORKLOAD_JOBS,
        "method": "fresh process per run, wall time from spawn to exit; one untimed warm-up "
                  "run of every case, then interleaved rounds in a fixed case order; ratios "
                  "are jaxmlp wall / peer wall (ratio of medians; range of per-round ratios)",
        "placeholders": {"{python}": sys.executable, "{peers}": str(PEERS),
                         "{out}": "a new path per run (jaxmlp: run folder; peers: JSON file)"},
        "jaxmlp_under_test": str(REPO),  # first on the jaxmlp cases' PYTHONPATH if a checkout
        "notes": notes}


def job_descriptions(epochs: dict, quick: bool) -> dict:
    """What each job trains, in words."""
    digits = ("digits 64-128-10 tanh, cross-entropy, SGD lr 0.1, batch 128, {} epochs, "
              "70/10/20 split")
    out = {"train": digits.format(epochs["train"]),
           "sweep": f"W3: 64 models on digits (widths 16,32,64,128 x lr 0.01,0.03,0.1,0.3 x 4 "
                    f"seeds), SGD, batch 128, {epochs['sweep']} epochs",
           "W1": digits.format(epochs["W1"])}
    for job, spec in FILE_JOBS.items():
        n = spec["quick_rows"] if quick else spec["rows"]
        out[job] = spec["what"].format(e=epochs[job], n=n, t=n - n // 5)
    return out


def _run_cases(report, specs, keys, rounds, timeout, notes, quick=False) -> None:
    """The file-based jobs' data (untimed), one untimed warm-up run of every case, then the
    interleaved rounds, into ``report``."""
    with tempfile.TemporaryDirectory(prefix="jaxmlp_e2e_") as td:
        work = Path(td)
        (work / "data").mkdir()
        for job in FILE_JOBS:
            if any(specs[k]["job"] == job for k in keys):
                write_job_data(job, work / "data", quick)
        for k in keys:
            rec = run_once(specs[k], work, "warmup", timeout)
            report["cases"][k]["warmup"] = {x: rec.get(x) for x in ("ok", "wall_s", "rc", "error")
                                            if x in rec}
            _show("warm-up", k, rec)
        for job in JOBS:
            if f"{job}/jaxmlp_warm" in keys:
                n = sum(1 for _ in (work / "caches" / f"{job}_warm").rglob("*") if _.is_file())
                report["meta"].setdefault("warm_cache_files", {})[job] = n
                if n == 0:
                    notes.append(f"{job}: the warm compile cache is empty after the warm-up run "
                                 "(jaxmlp_warm then measures a cold start)")
        for r in range(1, rounds + 1):
            for k in keys:
                rec = {"round": r, **run_once(specs[k], work, f"r{r}", timeout)}
                report["cases"][k]["rounds"].append(rec)
                _show(f"round {r}", k, rec)
