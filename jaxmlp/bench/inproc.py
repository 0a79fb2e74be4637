"""Benchmark jaxmlp against idiomatic PyTorch eager and scikit-learn on the same maths.

Each framework runs in its own process (``jaxmlp.bench.peers``), in interleaved rounds
(jaxmlp, PyTorch, scikit-learn, jaxmlp, ...). All three start from the same initial weights
(jaxmlp's ``init_mlp`` for the seed) and jaxmlp and PyTorch use the same mini-batch order
(jaxmlp's per-epoch permutation); scikit-learn shuffles with its own RNG. Before speed is
reported, the final training losses are checked to agree.

    python scripts/bench.py                      # full run (W1, W2, W3, W4, G), 3 rounds
    python scripts/bench.py --quick              # tiny sizes, 1 round, < 1 minute
    python scripts/bench.py --workloads W1,W4 --rounds 5 --out experiments/bench
    python scripts/bench.py --e2e                # whole commands: see jaxmlp/bench/e2e

Writes ``OUT/bench.json`` and ``OUT/speedups.png``; prints a table. ``main(argv)`` returns the
exit status (0: everything ran and the loss checks passed) so ``jaxmlp bench`` can call it.
PyTorch is optional: without it the PyTorch peer is skipped with a note.

This module is the command (flags, the run's steps, the report file); ``workloads`` says what
runs, ``runner`` runs the child processes, ``analysis`` reads their results, ``report``
prints the tables and draws the figure.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from jaxmlp.bench.analysis import (ATOL, RTOL_OWN_SHUFFLE, RTOL_SAME_ORDER,
                                   analyse_g, analyse_training, analyse_w3, flops_per_sample)
from jaxmlp.bench.args import OneLineParser
from jaxmlp.bench.machine import machine_info, torch_available
from jaxmlp.bench.raw import write_report
from jaxmlp.bench.report import evaluate_targets, plot, print_report
from jaxmlp.bench.runner import Plan, run_rounds
from jaxmlp.bench.workloads import (ALL_WORKLOADS, PEER_NAMES, digits_train_split,
                                    gemm_peak_size, workload_configs)

def parse_args(argv):
    """``jaxmlp bench``'s flags (``--e2e`` hands the rest to the whole-command benchmark)."""
    p = OneLineParser(prog="jaxmlp bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--e2e", action="store_true",
                   help="time whole commands in fresh processes instead (time to result; "
                        "its own flags: `jaxmlp bench --e2e --help`)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 round (< 1 minute)")
    p.add_argument("--workloads", default=None,
                   help=f"comma list of {','.join(ALL_WORKLOADS)} (default: all; quick: W1,W4)")
    p.add_argument("--frameworks", default=None,
                   help="comma list of jaxmlp,pytorch,pytorch_1t,sklearn (jaxmlp is always run; "
                        "pytorch = 2 intra-op threads, pytorch_1t = 1 thread; default: all, "
                        "quick: jaxmlp,pytorch,sklearn)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--out", default="bench_out", help="output folder (bench.json, speedups.png)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process")
    p.add_argument("--no-in-order-check", action="store_true",
                   help="skip the untimed scikit-learn run in jaxmlp's batch order (its maths "
                        "check at round-off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark; 0 when everything ran and the loss checks passed, 1 otherwise, 2 for
    bad arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--e2e" in argv:
        from jaxmlp.bench.e2e import main as e2e_main
        return e2e_main([a for a in argv if a != "--e2e"])
    args = parse_args(argv)
    try:
        wls, frameworks = _selection(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    notes = []
    plan, tmsg = _plan(args, wls, frameworks, notes)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    report = {"meta": _meta(argv, plan, tmsg), "workloads": {}, "notes": notes}
    print(f"jaxmlp bench: workloads {wls}, frameworks {list(plan.frameworks)}, {plan.rounds} "
          f"round(s){' (quick)' if plan.quick else ''}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jaxmlp_bench_") as td:
        peaks, data, raw = run_rounds(plan, Path(td))
        report["gemm_peak"] = _gemm_peak(peaks, plan.quick)
        report["workloads"] = _analyse(plan, data, raw, report["gemm_peak"]["peak_gflops"])
    report["targets"] = ([t for t in evaluate_targets(report) if t["workload"] in wls]
                         if not plan.quick else [])
    report["loss_check_passed"] = all(r["loss_check_passed"] for w, r in report["workloads"].items()
                                      if w in plan.train_workloads or w == "W3")
    report["meta"]["elapsed_s"] = time.time() - t_start
    if "sklearn" in plan.frameworks:
        notes.append("scikit-learn shuffles with its own RNG (random_state=seed); its batch "
                     "order differs from jaxmlp/PyTorch, hence the looser loss tolerance")
    _write(report, out_dir)
    jax_ok = all(r["frameworks"].get("jaxmlp", {}).get("ok_runs", 0) > 0
                 for w, r in report["workloads"].items() if w in plan.train_workloads)
    return 0 if (report["loss_check_passed"] and jax_ok) else 1


def _selection(args) -> tuple[list[str], list[str]]:
    """The workloads and frameworks asked for (``ValueError`` names an unknown one)."""
    wls = [w.strip().upper() for w in (args.workloads or ("W1,W4" if args.quick else
                                                          ",".join(ALL_WORKLOADS))).split(",")]
    bad = [w for w in wls if w not in ALL_WORKLOADS]
    if bad:
        raise ValueError(f"unknown workload(s) {bad}; choose from {ALL_WORKLOADS}")
    fw_arg = args.frameworks or ("jaxmlp,pytorch,sklearn" if args.quick else
                                 "jaxmlp,pytorch,pytorch_1t,sklearn")
    unknown = [f for f in fw_arg.split(",") if f not in ("jaxmlp", *PEER_NAMES)]
    if unknown:
        raise ValueError(f"unknown framework(s) {unknown}")
    return wls, ["jaxmlp"] + [f for f in PEER_NAMES if f in fw_arg.split(",")]


def _plan(args, wls, frameworks, notes) -> tuple[Plan, str]:
    """The run's plan, without the PyTorch peers when torch is missing (with a note)."""
    wants_torch = any(f.startswith("pytorch") for f in frameworks)
    have_torch, tmsg = torch_available() if wants_torch else (False, "not requested")
    if wants_torch and not have_torch:
        notes.append(f"PyTorch peer skipped: {tmsg}")
        print(f"note: {tmsg}")
        frameworks = [f for f in frameworks if not f.startswith("pytorch")]
    plan = Plan(quick=args.quick, rounds=args.rounds or (1 if args.quick else 3),
                workloads=tuple(wls), frameworks=tuple(frameworks), have_torch=have_torch,
                in_order_check=not args.no_in_order_check, timeout=args.timeout,
                configs=workload_configs(args.quick))
    return plan, tmsg


def _meta(argv, plan: Plan, tmsg: str) -> dict:
    return {"argv": argv, "quick": plan.quick, "rounds": plan.rounds,
            "workloads": list(plan.workloads), "frameworks": list(plan.frameworks),
            "machine": machine_info(), "torch": tmsg,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "flop_model": flops_per_sample.__doc__.strip(),
            "rtol": {"same_order": RTOL_SAME_ORDER, "own_shuffle": RTOL_OWN_SHUFFLE,
                     "atol_own_shuffle": ATOL}}


def _gemm_peak(peaks: list[dict], quick: bool) -> dict:
    """The GEMM peak over rounds: best of jnp.dot and numpy (NaN where none ran)."""
    n, reps = gemm_peak_size(quick)
    jp = [p["jax_gflops"] for p in peaks]
    npk = [p["numpy_gflops"] for p in peaks]
    peak = max(jp + npk) if peaks else None
    return {"n": n, "reps": reps, "jax_gflops": jp, "numpy_gflops": npk,
            "jax_gflops_best": max(jp) if jp else float("nan"),
            "numpy_gflops_best": max(npk) if npk else float("nan"),
            "peak_gflops": peak if peak else float("nan"),
            "definition": "best over rounds of max(jnp.dot, numpy @) "
                          "float32 n^3 GEMM, 2 n^3 FLOP, best of reps"}


def _analyse(plan: Plan, data: dict, raw: dict, peak) -> dict:
    """Each workload's report, from the rounds' raw results (read while their files exist)."""
    out = {}
    for wl in plan.train_workloads:
        X, y, sizes, _ = data[wl]
        out[wl] = analyse_training(plan.configs[wl], raw[wl], X, y, sizes, peak, quick=plan.quick)
    if "W3" in plan.workloads:
        X, y = digits_train_split()
        out["W3"] = analyse_w3(plan.configs["W3"], raw["W3"], X, y)
    if "G" in plan.workloads:
        out["G"] = analyse_g(plan.configs["G"], plan.configs["W1"], raw["G"])
    return out


def _write(report: dict, out_dir: Path) -> None:
    """Print the report, draw the figure, write ``bench.json``."""
    print_report(report)
    png = out_dir / "speedups.png"
    try:
        plot(report, png)
        report["plot"] = str(png)
    except Exception as e:  # the numbers matter more than the picture
        report["plot"] = None
        print(f"note: plot failed: {e}")
    write_report(out_dir / "bench.json", report, default=str)
    print(f"wrote {out_dir / 'bench.json'} and {png} ({report['meta']['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
