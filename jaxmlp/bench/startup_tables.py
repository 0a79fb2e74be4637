"""Tables of what a command pays before it trains (``scripts/bench_doc.py``): imports per
ml_dtypes release (``scripts/import_time.py``) and the training chunk's compile by XLA stage
(``scripts/compile_profile.py``)."""
from __future__ import annotations

from statistics import median as _median

from jaxmlp.bench.tables import spread
from jaxmlp.bench.tables_md import DASH, md


def import_time(rep: dict) -> str:
    """``scripts/import_time.py --out``: wall seconds of each import per ml_dtypes release, and
    the floor's ratio to the release pyproject.toml allows (the lowest one measured)."""
    cases = list(dict.fromkeys(r["case"] for r in rep["rows"]))
    versions = list(dict.fromkeys(r["ml_dtypes"] for r in rep["rows"]))
    wall = {(r["ml_dtypes"], r["case"]): r["wall_s"] for r in rep["rows"]}
    base = min(versions, key=lambda v: _median(wall[v, cases[-1]]))
    rows = [[f"ml_dtypes {v} (NumPy {next(r['numpy'] for r in rep['rows'] if r['ml_dtypes'] == v)})"]
            + [spread(wall[v, c], 1.0, 3) for c in cases]
            + [f"{_median(wall[v, cases[-1]]) / _median(wall[base, cases[-1]]):.2f}x"]
            for v in versions]
    return md(["variant"] + [f"`{c}`, s" for c in cases] + [f"`import jax…` relative to ml_dtypes {base}"],
              rows)


COMPILE_STAGES = (("xla_compile_s", "XLA compile (wall)"), ("hlo_passes_s", "HLO passes"),
                  ("emit_kernels_wall_s", "kernels emitted (compile thread's wall)"),
                  ("fusion_emitter_cpu_s", "fusion emitter, summed over codegen threads"),
                  ("llvm_codegen_s", "LLVM machine code"), ("trace_s", "tracing (Python)"),
                  ("lower_s", "lowering to StableHLO (Python)"), ("train_s", "training"))
#: The stages read from XLA's trace events: one a trace lacks took no time (the short-run
#: variant has no fusion-emitter events). The others the script measures itself; a variant
#: without one did not measure it (shown as –).
TRACED_STAGES = frozenset(("xla_compile_s", "hlo_passes_s", "emit_kernels_wall_s",
                           "fusion_emitter_cpu_s", "llvm_codegen_s"))


def compile_profile(rep: dict) -> str:
    """``scripts/compile_profile.py --out``: the compile by stage, seconds median [min-max]
    per variant (– where a variant has no such stage), and the kernel counts."""
    variants = list(dict.fromkeys(r["variant"] for r in rep["rows"]))
    col = {v: [r for r in rep["rows"] if r["variant"] == v] for v in variants}
    cell = lambda v, key: (spread([r.get(key, 0.0) for r in col[v]], 1.0, 3)
                           if key in TRACED_STAGES or all(key in r for r in col[v]) else DASH)
    rows = [[label] + [cell(v, key) for v in variants] for key, label in COMPILE_STAGES]
    for key, label in (("fusions", "fusion kernels in the program"),
                       ("loop_fusions", "of which elementwise/loop fusions"),
                       ("library_calls", "of which library calls (matrix products)"),
                       ("fusion_kernels_emitted", "kernels through the fusion emitter")):
        rows.append([label] + [str(int(_median([r[key] for r in col[v]]))) for v in variants])
    return md(["stage, s (median [min–max])"] + variants, rows)



def rule_words(rule: dict) -> str:
    """A quick-compile rule's constants (``scripts/compile_tiers.py``'s meta) in words."""
    if "QUICK_COSTS_S" in rule:
        costs = ", ".join(f"{v:g} s per {k[:-1]}" for k, v in rule["QUICK_COSTS_S"].items())
        return f"quick when {costs} add up to at most {rule['QUICK_SAVING_S']:g} s"
    if "QUICK_STEP_S" in rule:
        return (f"quick when {rule['QUICK_STEP_S']:g} s per step + {rule['QUICK_VALUE_S']:g} s "
                f"per value add up to at most {rule['QUICK_SAVING_S']:g} s")
    return f"quick at <= {rule['QUICK_FIT_VALUES']:.0e} elementwise values"


def compile_tiers(rep: dict) -> str:
    """``scripts/compile_tiers.py --out``: per shape, the estimate, the rule's pick, each way's
    compile + train (median [min-max] of its rounds), and whether the pick was right; then a
    summary line."""
    rows = []
    for r in rep["shapes"]:
        tot = {w: [x["total_s"] for x in r["runs"][w]] for w in ("full", "quick")}
        comp = {w: _median([x["compile_s"] for x in r["runs"][w]]) for w in ("full", "quick")}
        train = {w: _median([x["train_s"] for x in r["runs"][w]]) for w in ("full", "quick")}
        rows.append([f"{r['inputs']}-{'-'.join(map(str, r['hidden']))}-10",
                     f"{r['n_train']} x {r['epochs']}, batch {r['batch']}",
                     f"{r['extra_estimate_s']:.2f}",
                     r["rule"], spread(tot["full"], 1.0, 2), spread(tot["quick"], 1.0, 2),
                     f"{comp['full']:.2f} / {comp['quick']:.2f}",
                     f"{train['quick'] / train['full']:.1f}x",
                     ("yes" if r["rule_strictly_right"] else "within spread")
                     if r["rule_right"] else "no"])
    right = sum(r["rule_right"] for r in rep["shapes"])
    quick_right = sum(r["rule_right"] for r in rep["shapes"] if r["rule"] == "quick")
    n_quick = sum(r["rule"] == "quick" for r in rep["shapes"])
    table = md(["model", "rows x epochs", "estimated extra train s", "rule", "full: compile + train, s",
                "quick: compile + train, s", "compile s, full / quick", "quick train / full train",
                "rule right"], rows)
    saved = _median([_median([x["compile_s"] for x in r["runs"]["full"]])
                     - _median([x["compile_s"] for x in r["runs"]["quick"]]) for r in rep["shapes"]])
    text = (table + f"\nThe rule ({rule_words(rep['meta']['rule'])}) picked the "
            f"faster way or one within the runs' spread in {right}/{len(rows)} shapes; its quick "
            f"picks in {quick_right}/{n_quick}. Compile saved by the quick way, median over the "
            f"shapes: {saved:.2f} s.")
    first = rep["meta"].get("rescored", {}).get("measured_with")
    if first:  # re-scored: the rule the shapes were measured (and first scored) with
        was = sum(r["measured_rule"]["rule_right"] for r in rep["shapes"])
        text += (f" Measured with an earlier rule ({rule_words(first)}), which was right in "
                 f"{was}/{len(rows)}.")
    return text + "\n"


def e2e_before_after(before: dict, after: dict, job: str = "train") -> str:
    """Two ``jaxmlp bench --e2e`` runs (analysed: ``e2e.results.analyse``) side by side for
    ``job``'s jaxmlp cases: wall, compile and train columns (medians) and the ratios to the
    floor and to the scikit-learn script."""
    rows = []
    for name, label in (("jaxmlp_cold", "empty compile cache"), ("jaxmlp_warm", "filled cache")):
        for key, what in (("wall_s", "wall s"), ("compile_s", "compile column, s"),
                          ("train_s", "train column, s")):
            get = lambda rep: (rep["cases"][f"{job}/{name}"]["wall_s"] if key == "wall_s"
                               else rep["cases"][f"{job}/{name}"]["breakdown"][key])
            rows.append([label, what, f"{get(before)['median']:.2f}", f"{get(after)['median']:.2f}"])
        for peer in ("floor", "sklearn"):
            ratio = lambda rep: rep["ratios"][job][f"{name}/{peer}"]["median"]
            rows.append([label, f"wall / {peer}", f"{ratio(before):.2f}x", f"{ratio(after):.2f}x"])
    wall = lambda rep, name: rep["cases"][f"{job}/{name}"]["wall_s"]["median"]
    saved = wall(before, "jaxmlp_cold") - wall(after, "jaxmlp_cold")
    paid = wall(after, "jaxmlp_warm") - wall(before, "jaxmlp_warm")
    even = (f"\nA first run and {saved / paid:.1f} re-runs from the cache cost the same before "
            f"and after ({saved:.2f} s saved cold, {paid:.2f} s paid per warm run).\n"
            if saved > 0 and paid > 0 else "")
    return md(["`jaxmlp train`", "", "before", "after"], rows) + even
