"""Running the benchmark's child processes: one framework per process (``python -m
jaxmlp.bench.peers TASK.json RESULT.json``), in interleaved rounds (jaxmlp, PyTorch,
scikit-learn, jaxmlp, ...) so that a slow spell of the machine hits every framework alike."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jaxmlp.bench.workloads import (CORES, TORCH_THREADS, W3_PROCS, TRAIN_WORKLOADS, gemm_peak_size,
                                    write_g_data, write_training_data, write_w3_data)

#: The child's command before its two file arguments. ``-P``: the child's ``sys.path`` gets
#: neither the working directory nor a script's folder, only what the parent's environment gives.
PEERS_COMMAND = (sys.executable, "-P", "-m", "jaxmlp.bench.peers")


@dataclass(frozen=True)
class Plan:
    """What one benchmark run measures (from ``jaxmlp bench``'s flags)."""
    quick: bool
    rounds: int
    workloads: tuple[str, ...]
    frameworks: tuple[str, ...]  # "jaxmlp" first, then the peers that can run here
    have_torch: bool
    in_order_check: bool  # the untimed same-order sklearn maths check (first round)
    timeout: float  # seconds per child process
    configs: dict  # workload_configs(quick)

    @property
    def train_workloads(self) -> list[str]:
        return [w for w in self.workloads if w in TRAIN_WORKLOADS]


class Runner:
    """Runs one child per call: writes the task, waits, reads the result (plus its wall time
    and the load average when it started); a timeout or a crash is a result with ``ok: False``."""

    def __init__(self, tmp: Path, timeout: float, verbose: bool = True):
        self.tmp, self.timeout, self.verbose, self.count = tmp, timeout, verbose, 0

    def __call__(self, runner: str, **task) -> dict:
        self.count += 1
        tpath = self.tmp / f"task{self.count}.json"
        rpath = self.tmp / f"result{self.count}.json"
        task = dict(task, runner=runner)
        tpath.write_text(json.dumps(task))
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        try:
            p = subprocess.run([*PEERS_COMMAND, str(tpath), str(rpath)],
                               capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {self.timeout:.0f} s"}
        wall = time.perf_counter() - t0
        if not rpath.exists():
            return {"ok": False, "error": f"exit {p.returncode}: {p.stderr.strip()[-600:]}"}
        res = json.loads(rpath.read_text())
        res["process_wall_s"] = wall
        res["loadavg_1min_at_start"] = load
        if self.verbose:
            self._show(task.get("label", runner), res)
        return res

    @staticmethod
    def _show(what: str, res: dict) -> None:
        msg = (f"{res['train_s']:.3f} s train" if "train_s" in res else
               f"{res['total_s']:.2f} s total" if "total_s" in res else "done")
        print(f"  {what:<28} {'ok' if res.get('ok') else 'FAILED'}  "
              f"{msg if res.get('ok') else res.get('error')}", flush=True)


def run_rounds(plan: Plan, tmp: Path):
    """Every round's child runs, interleaved; the data files are written under ``tmp`` first.

    Returns:
        ``(peaks, data, raw)``: the GEMM peak results that ran, ``{workload: (X, y, sizes,
        path)}`` of the training workloads, ``{workload: {entry: [result per round]}}``.
    """
    run = Runner(tmp, plan.timeout)
    data = {wl: write_training_data(wl, plan.configs[wl], tmp) for wl in plan.train_workloads}
    raw = {wl: {} for wl in plan.workloads}
    peaks = []
    n, reps = gemm_peak_size(plan.quick)
    for r in range(plan.rounds):
        print(f"round {r + 1}/{plan.rounds}", flush=True)
        pk = run("gemm_peak", label="GEMM peak", n=n, reps=reps)
        if pk.get("ok"):
            peaks.append(pk)
        for wl in plan.train_workloads:
            run_training_workload(wl, plan.configs[wl], run, data[wl][3], plan.frameworks,
                                  raw[wl], in_order_check=r == 0 and plan.in_order_check)
        if "W3" in plan.workloads:
            run_w3(plan.configs["W3"], run, tmp, plan.frameworks, plan.have_torch, raw["W3"],
                   in_order_check=r == 0 and plan.in_order_check)
        if "G" in plan.workloads:
            run_g(plan.configs["G"], plan.configs["W1"], run, tmp, plan.frameworks,
                  plan.have_torch, raw["G"])
    return peaks, data, raw


def run_training_workload(wl, cfg, run, data_path, frameworks, results, in_order_check):
    """One round of W1/W2/W4: each framework trains once."""
    task = {"data": str(data_path), "config": cfg}
    for fw in frameworks:
        runner = "pytorch" if fw.startswith("pytorch") else fw
        res = run(runner, label=f"{wl} {fw}", in_order_check=in_order_check,
                  torch_threads=TORCH_THREADS.get(fw, 2), **task)
        results.setdefault(fw, []).append(res)


def run_g(cfg, w1cfg, run, tmp, frameworks, have_torch, results):
    """One round of G: per-example gradients (jax, torch) and W1 with each grad mode."""
    path = write_g_data(w1cfg, tmp)
    base = {"data": str(path), "batch_sizes": cfg["batch_sizes"], "reps": cfg["reps"]}
    results.setdefault("pex_jax", []).append(run("pex_jax", label="G per-example jax", **base))
    if have_torch and "pytorch" in frameworks:
        results.setdefault("pex_torch", []).append(
            run("pex_torch", label="G per-example torch", torch_threads=2, **base))
    for g in ("autodiff", "manual"):
        results.setdefault(f"train_{g}", []).append(
            run("jaxmlp", label=f"G W1 grad={g}", data=str(path), config=w1cfg, grad=g))


def run_w3(cfg, run, tmp, frameworks, have_torch, results, in_order_check=False):
    """One round of W3: jaxmlp's sweep (one device; a device per core), each peer's 64 fits
    (scikit-learn's single process also refits every model in jaxmlp's order, untimed, with
    ``in_order_check``)."""
    path = write_w3_data(cfg, tmp)
    results.setdefault("jaxmlp", []).append(run("sweep_jaxmlp", label="W3 jaxmlp sweep",
                                                data=str(path), config=cfg))
    # as `jaxmlp sweep` runs it: one host device per core (the Python default is one device)
    results.setdefault(CORES, []).append(run("sweep_jaxmlp_cores", data=str(path), config=cfg,
                                             label="W3 jaxmlp sweep, a host device per core"))
    for fw in frameworks:
        if fw == "jaxmlp" or (fw.startswith("pytorch") and not have_torch):
            continue
        runner = "sweep_pytorch" if fw.startswith("pytorch") else f"sweep_{fw}"
        results.setdefault(fw, []).append(run(runner, label=f"W3 {fw} 64 fits", data=str(path),
                                              config=cfg, torch_threads=TORCH_THREADS.get(fw, 2),
                                              in_order_check=in_order_check and fw == "sklearn"))
    # each peer also as a user runs a grid search: one process per core, one thread each
    for base, procs in W3_PROCS.items():
        if any(fw.startswith(base) for fw in frameworks) and (base != "pytorch" or have_torch):
            results.setdefault(procs, []).append(run(
                f"sweep_{procs}", label=f"W3 {base} 64 fits, a process per core",
                data=str(path), config=cfg))
