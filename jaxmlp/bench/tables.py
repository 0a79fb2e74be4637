"""Markdown tables from committed raw benchmark results (``jaxmlp bench``'s bench.json,
``jaxmlp bench --e2e``'s e2e.json, ``scripts/thresholds.py``, ``scripts/scaling.py``,
``scripts/ab_bench.py``): what ``scripts/bench_tables.py`` prints and ``scripts/bench_doc.py``
writes into BENCHMARKS.md and the README. Pure Python: nothing here imports JAX.

Speedups are a peer's time over jaxmlp's (higher is better): the ratio of the medians over
rounds, [min-max] the range of the per-round ratios.
"""
from __future__ import annotations

from statistics import median as _median

from jaxmlp.bench import report as inproc_report
from jaxmlp.bench.e2e import results as e2e_results
from jaxmlp.bench.tables_md import DASH, md
from jaxmlp.bench.workloads import PEER_NAMES, W3_FAMILIES

#: Each peer family's forms in the whole-command benchmark (in-process: ``W3_FAMILIES``, of
#: which the single-process ones, ``PEER_NAMES``, run W1/W2/W4).
E2E_FORMS = {"pytorch": ("pytorch", "pytorch_cores"), "sklearn": ("sklearn", "sklearn_cores")}
NAMES = {"pytorch": "PyTorch eager", "sklearn": "scikit-learn"}


def x(s: dict | None, prec: int = 2) -> str:
    """``median x [min-max]`` of a speedup summary."""
    if not s:
        return DASH
    return f"{s['median']:.{prec}f}x [{s['min']:.{prec}f}{DASH}{s['max']:.{prec}f}]"


def secs(s: dict | None, prec: int = 3) -> str:
    if not s:
        return DASH
    return f"{s['median']:.{prec}f} [{s['min']:.{prec}f}{DASH}{s['max']:.{prec}f}]"


def machine_line(meta: dict) -> str:
    m = meta.get("machine", {})
    v = m.get("versions", {})
    return (f"{m.get('Model name', '?')}, {m.get('cpu_count', '?')} cores, "
            f"{m.get('Thread(s) per core', '?')} thread per core; {_where(m)}"
            f"Python {m.get('python', '?')}, "
            + ", ".join(f"{k} {val}" for k, val in v.items() if val) + f"; started "
            f"{meta.get('started', '?')}")


def _where(m: dict) -> str:
    """Which device jaxmlp ran on (recorded since the eighth session; the peers run on the
    CPU), e.g. "jaxmlp on gpu (1 x NVIDIA H200), peers on the CPU; "."""
    jx = m.get("jax")
    if not jx or not jx.get("backend"):
        return ""
    kinds = sorted(set(jx["devices"]))
    return (f"jaxmlp on {jx['backend']} ({len(jx['devices'])} x {', '.join(kinds)}), "
            "peers on the CPU; ")


# ------------------------------------------------------------------------------ headline
def _inproc_speedups(inproc: dict, wl: str, family: str) -> tuple[dict | None, dict | None]:
    """(train only, time to result in-process) speedups of jaxmlp over ``family``'s fastest
    form in ``wl``."""
    r = inproc["workloads"].get(wl)
    if not r:
        return None, None
    if wl == "W3":
        s = r.get("speedup_vs_fastest", {}).get(family)
        run = _w3_train_only(r, family)
        return run, s
    sp = r.get("speedup", {})
    forms = [f for f in W3_FAMILIES[family] if f in PEER_NAMES and sp.get(f)]
    if not forms:
        return None, None
    # each column against the form fastest in it (the smallest speedup of jaxmlp)
    train = min((sp[f] for f in forms), key=lambda v: v["median"])
    ttrs = [sp[f]["time_to_result"] for f in forms if sp[f].get("time_to_result")]
    return train, min(ttrs, key=lambda v: v["median"]) if ttrs else None


def _w3_train_only(r: dict, family: str) -> dict | None:
    """W3 without compile: the peer's fastest form's fits over jaxmlp's run (medians; the
    range from the per-round values of both)."""
    fw = r["frameworks"]
    run = (fw.get("jaxmlp") or {}).get("run_s")
    times = {f: fw[f]["total_s"] for f in W3_FAMILIES[family] if (fw.get(f) or {}).get("total_s")}
    if not run or not times:
        return None
    best = min(times, key=lambda f: times[f]["median"])
    pairs = [p / j for p, j in zip(times[best]["values"], run["values"])]
    return {"median": times[best]["median"] / run["median"], "min": min(pairs), "max": max(pairs),
            "form": best}


def _e2e_speedup(e2e: dict, job: str, family: str, mine: str) -> dict | None:
    """Whole command: the peer's fastest form's wall time over jaxmlp's (``mine`` = cold or
    warm compile cache), inverted from the e2e ratios."""
    rs = e2e.get("ratios", {}).get(job, {})
    got = {p: rs[f"jaxmlp_{mine}/{p}"] for p in E2E_FORMS[family] if f"jaxmlp_{mine}/{p}" in rs}
    if not got:
        return None
    best = max(got, key=lambda p: got[p]["median"])  # the peer form closest to jaxmlp
    r = got[best]
    return {"median": 1.0 / r["median"], "min": 1.0 / r["max"], "max": 1.0 / r["min"],
            "form": best}


def headline(inproc: dict, e2e: dict) -> str:
    """Per workload and peer: jaxmlp's speedup train only, in time to result in-process (every
    compile included) and as a whole command (cold, then with a filled compile cache)."""
    e2e = e2e_results.analyse(e2e)
    head = ["workload", "peer", "train only", "time to result, in-process",
            "whole command, cold", "whole command, warm cache"]
    rows = []
    for wl in ("W1", "W2", "W4", "W3"):
        if wl not in inproc["workloads"]:
            continue
        for family in ("pytorch", "sklearn"):
            train, ttr = _inproc_speedups(inproc, wl, family)
            cold, warm = (_e2e_speedup(e2e, e2e_results.WORKLOAD_JOBS[wl], family, m)
                          for m in ("cold", "warm"))
            if not any((train, ttr, cold, warm)):
                continue
            rows.append([wl, NAMES[family], x(train), x(ttr), x(cold), x(warm)])
    return md(head, rows)


def workload_sizes(inproc: dict) -> str:
    """One line per workload: what it trains."""
    out = []
    for wl, r in inproc["workloads"].items():
        c = r.get("config", {})
        if wl == "G":
            continue
        ep = f"{c.get('epochs')} epoch{'' if c.get('epochs') == 1 else 's'}"
        extra = (f"{r.get('n_train', '?'):,} training rows, {ep}, batch "
                 f"{c.get('batch_size')}" if wl != "W3" else
                 f"widths {c.get('widths')} x lr {c.get('lrs')} x {c.get('seeds')} seeds, "
                 f"{ep}, batch {c.get('batch_size')}")
        out.append(f"- **{wl}** {c.get('name', '')}: {extra}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ targets
def target_rows(inproc: dict, e2e: dict | None = None) -> list[tuple[str, str, bool | None]]:
    """Every target as ``(target, measured, met)`` (met None: not run), recomputed from the
    raw values: ``jaxmlp bench``'s, then the whole commands' (``e2e``)."""
    rows = []
    for t in inproc_report.evaluate_targets(inproc):
        m = t["measured"]
        unit = {"compile_s_max": "s", "peak_fraction": "%"}.get(t["metric"], "x")
        val = (DASH if m is None else f"{m:.3f} s (slowest round)" if unit == "s" else
               f"{100 * m:.1f}%" if unit == "%" else f"{m:.2f}x")
        rows.append((t["target"], val, t["met"]))
    if e2e is not None:
        for t in e2e_results.analyse(e2e)["targets"]:
            val = DASH if t["measured"] is None else f"{t['measured']:.2f}x"
            rows.append((f"whole command {t['target']} (wall-time ratio, lower is better)", val,
                         t["met"]))
    return rows


def _status(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**missed**"


def targets(inproc: dict, e2e: dict | None = None) -> str:
    """The targets table (``target_rows``)."""
    return md(["target", "measured (median)", "status"],
              [[t, val, _status(met)] for t, val, met in target_rows(inproc, e2e)])


def targets_across(runs: list, e2e: dict | None = None) -> str:
    """The targets of several in-process runs side by side: ``runs`` is ``[(label, inproc)]``."""
    per = [target_rows(inp, e2e) for _, inp in runs]
    rows = [[t] + [f"{r[i][1]} ({_status(r[i][2])})" for r in per]
            for i, (t, _, _) in enumerate(per[0])]
    return md(["target", *[label for label, _ in runs]], rows)


# ------------------------------------------------------------------------------ detail
def training_detail(inproc: dict) -> str:
    """W1/W2/W4: every framework's compile, train and time to result, rates and speedups."""
    head = ["WL", "framework", "compile s", "train s median [min\u2013max]",
            "default fit: tier, train s", "time to result s", "GFLOP/s", "% peak", "final loss", "speedup: train",
            "speedup: time to result"]
    rows = []
    for wl, r in inproc["workloads"].items():
        if wl in ("W3", "G"):
            continue
        for fw, e in r["frameworks"].items():
            if "train_s" not in e:
                rows.append([wl, fw, DASH, "failed: " + "; ".join(e.get("errors", []))[:60],
                             *[DASH] * 7])
                continue
            sp = r.get("speedup", {}).get(fw)
            peak = e.get("peak_fraction")
            rows.append([wl, fw, secs(e.get("compile_s"), 2) if "compile_s" in e else DASH,
                         secs(e["train_s"]),
                         (f"{e['default_tier']}, {e['default_train_s']['median']:.3f}"
                          if "default_tier" in e else DASH), secs(e.get("time_to_result_s")),
                         f"{e['gflops']:.1f}", DASH if peak is None else f"{100 * peak:.1f}%",
                         f"{e['final_loss']['median']:.5f}", x(sp) if sp else DASH,
                         x(sp.get("time_to_result")) if sp else DASH])
    return md(head, rows)


def loss_checks(inproc: dict) -> str:
    """Every loss-agreement check of every workload with its values and verdict."""
    rows = []
    for wl, r in inproc["workloads"].items():
        for c in r.get("loss_checks", []):
            if "models" in c:
                vals = f"{c['agreeing']}/{c['models']} models agree"
            else:
                vals = f"{c['jaxmlp']:.6g} vs {c['peer']:.6g}"
            verdict = ("pass" if c["passed"] else "**FAIL**") + (
                "" if c.get("counted", True) else " (not counted)")
            rows.append([wl, c["check"], vals, f"{c['rtol']:g}", verdict])
    return md(["WL", "check", "values", "rtol", "verdict"], rows)


def w3_detail(inproc: dict) -> str:
    """W3: every form's total time and jaxmlp's speedup over it (including compile)."""
    r = inproc["workloads"].get("W3")
    if not r:
        return "W3 was not run.\n"
    rows = []
    for fw, e in r["frameworks"].items():
        sp = r.get("speedup", {}).get(fw)
        extra = ""
        if "run_s" in e:
            extra = f" (compile {e['compile_s']['median']:.2f}, run {e['run_s']['median']:.2f})"
        rows.append([fw, secs(e.get("total_s")) + extra, x(sp) if sp else DASH])
    return md(["form", "total s median [min\u2013max]", "jaxmlp's speedup (incl. compile)"], rows)


def g_table(inproc: dict) -> str:
    """G: per-example gradient calls (ms) and W1 trained with each gradient mode."""
    r = inproc["workloads"].get("G")
    if not r:
        return "G was not run.\n"
    rows = []
    for k, v in r["per_example"].items():
        if isinstance(v, dict) and "median_s" in v:
            s = {q: v["median_s"][q] * 1e3 for q in ("median", "min", "max")}
            rows.append([k, secs(s), f"{v['first_call_s']['median'] * 1e3:.0f}"])
        else:
            rows.append([k, str(v), DASH])
    out = md(["call", "ms per call, median [min\u2013max]", "first call ms (incl. compile)"], rows)
    modes = [[g, secs(v["train_s"]), f"{v['compile_s']['median']:.2f}",
              f"{v['running_loss_last_epoch']['median']:.5f}"]
             for g, v in r["grad_modes"].items() if "train_s" in v]
    return out + "\n" + md(["W1, grad mode", "train s", "compile s", "last-epoch loss"], modes)


def e2e_tables(e2e: dict) -> str:
    return e2e_results.render(e2e_results.analyse(e2e), markdown=True)


# ------------------------------------------------------------------------------ A/B, scaling
def ab_table(report: dict) -> str:
    """The A/B of ``scripts/ab_bench.py``: medians [min-max] of train_s per side, the ratio of
    medians, compile, and whether the final losses agree (or the command pair's wall times)."""
    m = report["meta"]
    lines = [f"base `{m['base'][:7]}` vs head `{m['head'][:7]}`"
             f"{' (uncommitted changes)' if m['head_dirty'] else ''}; {m['rounds']} rounds x "
             f"{m['reps']} timed fits per side (or one command pair), alternating; "
             f"{m['cpu_model']}, {m['cpu_count']} cores; `{m['command']}`", "",
             "| workload | base train s | head train s | head/base | compile s (base, head) | "
             "final train loss |", "|---|---|---|---|---|---|"]
    if report.get("commands"):
        lines[2:] = ["| command | base wall s | head wall s | head/base | compile s (base, head) | "
                     "import s (base, head) |", "|---|---|---|---|---|---|"]
        for job, res in report["commands"].items():
            for mode in ("cold", "warm"):
                b, h = res["median"]["base"][mode], res["median"]["head"][mode]
                lines.append(f"| `jaxmlp {job}`, {'empty' if mode == 'cold' else 'filled'} compile "
                             f"cache | {b['wall_s']:.3f} | {h['wall_s']:.3f} | "
                             f"{h['wall_s'] / b['wall_s']:.3f} | {b['compile_s']:.3f}, "
                             f"{h['compile_s']:.3f} | {b['import_s']:.3f}, {h['import_s']:.3f} |")
    for w, r in report["workloads"].items():
        b, h = r["base"], r["head"]
        rng = lambda s: (f"{s['train_s_median']:.4f} [{s['train_s_min']:.4f}{DASH}"
                         f"{s['train_s_max']:.4f}]")
        same = "identical" if b["train_loss"] == h["train_loss"] else (
            f"differ: {b['train_loss']} vs {h['train_loss']}")
        lines.append(f"| {w} {r['name']} | {rng(b)} | {rng(h)} | "
                     f"{h['train_s_median'] / b['train_s_median']:.3f} | "
                     f"{b['compile_s_median']:.2f}, {h['compile_s_median']:.2f} | {same} |")
    return "\n".join(lines) + "\n"


def scaling(rep: dict) -> str:
    """``scripts/scaling.py --out``: the sharded sweep and the data-parallel fit per layout."""
    out = []
    sw = rep.get("sweep", [])
    if sw:
        out.append(md(["devices", "compile s", "run s", "total s", "mean test accuracy"],
                      [[str(r["devices"]), f"{r['compile_s']:.2f}", f"{r['run_s']:.2f}",
                        f"{r['total_s']:.2f}", f"{r['mean_test_acc']:.4f}"] for r in sw]))
    dp = rep.get("data_parallel", [])
    if dp:
        out.append(md(["devices", "processes", "compile s", "train s", "final train loss"],
                      [[str(r["devices"]), str(r["processes"]), f"{r['compile_s']:.2f}",
                        f"{r['train_s']:.2f}", f"{r['train_loss']:.6f}"] for r in dp]))
    return "\n".join(out)


def spread(values: list, scale: float = 1.0, prec: int = 3) -> str:
    """``median [min-max]`` of ``values`` times ``scale``."""
    v = sorted(values)
    return (f"{_median(v) * scale:.{prec}f} [{v[0] * scale:.{prec}f}{DASH}"
            f"{v[-1] * scale:.{prec}f}]")


def overlap(rep: dict) -> str:
    """``scripts/order_overlap.py --out``: host time between chunks with the next chunk's data
    orders drawn inline and drawn ahead (medians [min-max] over every chunk of every round)."""
    rows = []
    for way, label in (("inline", "drawn inline (before)"), ("ahead", "drawn ahead (now)")):
        mine = [r for r in rep["rows"] if r["way"] == way]
        rows.append([label,
                     spread([g for r in mine for g in r["host_gaps_s"]], 1e3, 2),
                     spread([d for r in mine for d in r["draw_s"]], 1e3, 1),
                     spread([r["train_s"] for r in mine], 1.0, 3)])
    same = "identical" if rep["same_loss"] else "**differ**"
    return (md(["data orders", "host gap per chunk, ms", "order draw per chunk, ms",
                "train s"], rows) + f"\nFinal train losses of every run: {same}.\n")


def steplog_cost(rep: dict) -> str:
    """``scripts/steplog_cost.py --out``: train seconds without in-chunk reports, with "auto"
    reports and with one every step; ratios are medians of the per-round ratios to "off"."""
    rows, verdict = [], []
    for r in rep["rows"]:
        t = r["train_s"]
        ratio = lambda m: _median([a / b for a, b in zip(t[m], t["off"])])
        same = "yes" if all(r["bit_identical"].values()) else "**no**"
        rows.append([f"{r['workload']} {r['name']}", spread(t["off"], 1.0, 4),
                     spread(t["auto"], 1.0, 4), f"{ratio('auto'):.3f}", str(r["reports"]["auto"]),
                     spread(t["every step"], 1.0, 4), f"{ratio('every step'):.2f}",
                     str(r["reports"]["every step"]), same])
        noise = max(t["off"]) / min(t["off"]) - 1.0
        verdict.append(f"{r['workload']} {'within' if ratio('auto') <= 1.02 else '**beyond**'} "
                       f"(the runs without reports alone spread {100 * noise:.0f}%)")
    return (md(["workload", "off: train s", "auto: train s", "auto / off", "auto reports",
                "every step: train s", "every step / off", "reports", "params bit-identical"],
               rows) + f"\nAuto reports against none, the issue's bound of 2%: "
            f"{'; '.join(verdict)}.\n")

