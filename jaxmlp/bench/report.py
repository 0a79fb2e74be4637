"""The in-process benchmark's verdicts and output: targets met or missed, the printed tables
and the speedup figure."""
from __future__ import annotations

from jaxmlp.bench.workloads import CORES

TARGETS = [  # (workload, metric, threshold, description)
    ("W1", "speedup_pytorch", 5.0, "W1 >= 5x PyTorch eager"),
    ("W1", "speedup_sklearn", 3.0, "W1 >= 3x scikit-learn"),
    ("W1", "compile_s_max", 1.0, "W1 jaxmlp compile < 1 s"),
    ("W2", "speedup_pytorch", 1.4, "W2 >= 1.4x PyTorch eager"),
    ("W2", "peak_fraction", 0.75, "W2 >= 75% of measured GEMM peak"),
    ("W4", "speedup_pytorch", 12.0, "W4 >= 12x PyTorch eager"),
    ("W4", "speedup_sklearn", 4.0, "W4 >= 4x scikit-learn"),
    ("W4", "compile_s_max", 1.0, "W4 jaxmlp compile < 1 s"),
    ("W3", "speedup_fastest_pytorch", 2.0, "W3 >= 2x PyTorch eager's fastest form, incl. compile"),
    ("W3", "speedup_fastest_sklearn", 2.0, "W3 >= 2x scikit-learn's fastest form, incl. compile"),
    # time to a trained model: jaxmlp (compile + train) / scikit-learn train, lower is better
    ("W1", "time_to_model_sklearn", 1.0, "W1 time to model <= 1.0x sklearn"),
    ("W4", "time_to_model_sklearn", 0.3, "W4 time to model <= 0.3x sklearn"),
]


def evaluate_targets(report):
    """Each of :data:`TARGETS` with its measured value and whether it is met (None: not run)."""
    out = []
    for wl, metric, thr, desc in TARGETS:
        val = _measured(report["workloads"].get(wl), metric)
        lower_is_better = metric == "compile_s_max" or metric.startswith("time_to_model_")
        met = None if val is None else (val <= thr if metric.startswith("time_to_model_") else
                                        val < thr if lower_is_better else val >= thr)
        out.append({"target": desc, "workload": wl, "metric": metric, "threshold": thr,
                    "measured": val, "met": met})
    return out


def _measured(r, metric):
    """A target metric's value in workload report ``r`` (None when absent)."""
    if not (r and "frameworks" in r):
        return None
    j = r["frameworks"].get("jaxmlp", {})
    if metric == "speedup_pytorch":  # against the faster PyTorch thread setting
        ss = [v["median"] for k, v in r.get("speedup", {}).items() if k.startswith("pytorch")]
        return min(ss) if ss else None
    if metric.startswith("speedup_fastest_"):  # W3: against the peer's fastest form
        s = r.get("speedup_vs_fastest", {}).get(metric.rsplit("_", 1)[1])
        return s["median"] if s else None
    if metric.startswith("speedup_"):
        s = r.get("speedup", {}).get(metric.split("_", 1)[1])
        return s["median"] if s else None
    if metric.startswith("time_to_model_"):
        s = r.get("time_to_model", {}).get(metric.split("_", 3)[3])
        return s["median"] if s else None
    if metric == "compile_s_max" and "compile_s" in j:
        return j["compile_s"]["max"]
    if metric == "peak_fraction":
        return j.get("peak_fraction")
    return None


def plot(report, path):
    """The speedups (median, min-max) against their targets as a bar chart PNG at ``path``."""
    from jaxmlp.atomic import atomic_write_bytes
    from jaxmlp.runs.plots import bars_figure
    labels, vals, lo, hi, cols = [], [], [], [], []
    thr = {(wl, m.split("_", 1)[1]): t for wl, m, t, _ in TARGETS if m.startswith("speedup_")}
    thr.update({(wl, "pytorch_1t"): t for (wl, fw), t in list(thr.items()) if fw == "pytorch"})
    colour = {"pytorch": "tab:orange", "pytorch_1t": "tab:red", "sklearn": "tab:green"}
    targets = []
    for wl, r in report["workloads"].items():
        for fw, s in r.get("speedup", {}).items():
            labels.append(f"{wl}\nvs {fw}")
            vals.append(s["median"])
            lo.append(s["median"] - s.get("min", s["median"]))
            hi.append(s.get("max", s["median"]) - s["median"])
            cols.append(colour.get(fw, "tab:blue"))
            targets.append(thr.get((wl, fw)))
    atomic_write_bytes(path, bars_figure(
        labels, vals, (lo, hi), cols, targets, ylabel="speedup of jaxmlp (peer time / jaxmlp time)",
        title="jaxmlp vs peers, train time excl. compile (median, min-max; dashed: target)"))


# ------------------------------------------------------------------------------------ tables
def fmt_range(s, scale=1.0, prec=3):
    """``median [min-max]`` of a summary (times ``scale``), or ``-``."""
    if not s:
        return "-"
    return (f"{s['median'] * scale:.{prec}f} [{s['min'] * scale:.{prec}f}-"
            f"{s['max'] * scale:.{prec}f}]")



def print_report(report):
    """Print the whole report: GEMM peak, each workload's table and checks, targets, notes."""
    print()
    peak = report["gemm_peak"]
    print(f"float32 GEMM peak ({peak['n']}^3, best of {peak['reps']} per round): "
          f"jnp.dot {peak['jax_gflops_best']:.1f} GFLOP/s, numpy {peak['numpy_gflops_best']:.1f} "
          f"GFLOP/s -> peak used {peak['peak_gflops']:.1f} GFLOP/s")
    for wl, r in report["workloads"].items():
        if wl not in ("G", "W3"):
            _print_training(wl, r)
    if "W3" in report["workloads"]:
        _print_w3(report["workloads"]["W3"])
    if "G" in report["workloads"]:
        _print_g(report["workloads"]["G"])
    if report["targets"]:
        _print_targets(report["targets"])
    for n in report["notes"]:
        print(f"note: {n}")
    print(f"\nloss-agreement check: {'PASSED' if report['loss_check_passed'] else 'FAILED'}")


def _print_training(wl, r):
    print(f"\n{wl}: {r['config']['name']}  (n_train={r['n_train']}, epochs="
          f"{r['config']['epochs']}, batch={r['config']['batch_size']}, "
          f"lr={r['config']['lr']})")
    hdr = (f"  {'framework':<9} {'compile s':>9} {'train s median [min-max]':>28} "
           f"{'samples/s':>11} {'GFLOP/s':>8} {'%peak':>6} {'final loss':>10} "
           f"{'speedup median [min-max]':>26}")
    print(hdr)
    for fw, e in r["frameworks"].items():
        if "train_s" not in e:
            print(f"  {fw:<9} unavailable: {'; '.join(e.get('errors', []))[:150]}")
            continue
        comp = f"{e['compile_s']['median']:.3f}" if "compile_s" in e else "-"
        sp = r["speedup"].get(fw)
        sps = (f"{sp['median']:.2f}x [{sp['min']:.2f}-{sp['max']:.2f}]" if sp else
               "(reference)" if fw == "jaxmlp" else "-")
        pf = f"{100 * e['peak_fraction']:.1f}" if e.get("peak_fraction") else "-"
        print(f"  {fw:<9} {comp:>9} {fmt_range(e['train_s']):>28} "
              f"{e['samples_per_s']:>11.0f} {e['gflops']:>8.2f} {pf:>6} "
              f"{e['final_loss']['median']:>10.5f} {sps:>26}")
    for fw, t in r.get("time_to_model", {}).items():
        print(f"  time to a trained model, jaxmlp (compile + train) / {fw} train: "
              f"{t['median']:.2f}x [{t['min']:.2f}-{t['max']:.2f}]")
    for fw, sp in r["speedup"].items():
        if "time_to_result" in sp:
            t, e = sp["time_to_result"], r["frameworks"]
            print(f"  time to result in-process, speedup vs {fw} (its warm-up + train "
                  f"{e[fw]['time_to_result_s']['median']:.3f} s / jaxmlp's whole fit, every "
                  f"compile {e['jaxmlp']['time_to_result_s']['median']:.3f} s): "
                  f"{t['median']:.2f}x [{t['min']:.2f}-{t['max']:.2f}]")
    for c in r["loss_checks"]:
        extra = (f": {c['jaxmlp']:.5f} vs {c['peer']:.5f} (rtol {c['rtol']})"
                 if "jaxmlp" in c else "")
        verdict = "PASS" if c["passed"] else "FAIL"
        if not c.get("counted", True):
            verdict += " (quick mode: reported, not counted)"
        print(f"  loss check {verdict} - {c['check']}{extra}")


def _print_w3(r):
    print("\nW3: sweep of 64 models")
    for fw, e in r["frameworks"].items():
        print(f"  {fw:<12} total {fmt_range(e.get('total_s'))} s  {e.get('error', '')}")
    for key, who in (("speedup", "jaxmlp"), ("speedup_cores", CORES)):
        for fw, s in r.get(key, {}).items():
            print(f"  speedup of {who} vs {fw}: {s['median']:.2f}x "
                  f"[{s['min']:.2f}-{s['max']:.2f}]")
        for family, s in r.get(f"{key}_vs_fastest", {}).items():
            print(f"  speedup of {who} vs {family}'s fastest form ({s['form']}): "
                  f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]  <- the ratio that counts")
    for c in r.get("loss_checks", []):
        print(f"  loss check {'PASS' if c['passed'] else 'FAIL'} - {c['check']}: "
              f"{c['agreeing']}/{c['models']} models within rtol {c['rtol']}")


def _print_g(r):
    print("\nG: per-example gradients (W1 model 64-128-10, median ms per call)")
    for k, v in r["per_example"].items():
        if isinstance(v, dict) and "median_s" in v:
            print(f"  {k:<36} {fmt_range(v['median_s'], 1e3, 3)} ms   "
                  f"(first call incl. compile {v['first_call_s']['median'] * 1e3:.0f} ms)")
        else:
            print(f"  {k:<36} {v}")
    print("  W1 training, grad mode (jaxmlp):")
    for g, v in r["grad_modes"].items():
        if "train_s" in v:
            print(f"  {g:<9} train {fmt_range(v['train_s'])} s, compile "
                  f"{v['compile_s']['median']:.3f} s, last-epoch loss "
                  f"{v['running_loss_last_epoch']['median']:.5f}")
        else:
            print(f"  {g:<9} unavailable: {v.get('error')}")


def _print_targets(targets):
    print("\nTargets (speedups: train time excl. compile, ratio of medians; "
          "vs PyTorch = vs its faster thread setting):")
    for t in targets:
        m = t["measured"]
        ms = "n/a" if m is None else (f"{m:.3f}" if t["metric"] == "compile_s_max" else
                                      f"{100 * m:.1f}%" if t["metric"] == "peak_fraction"
                                      else f"{m:.2f}x")
        status = "n/a" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        print(f"  {t['target']:<36} measured {ms:>9}  {status}")
