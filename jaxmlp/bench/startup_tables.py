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
                     f"{r['n_train']} x {r['epochs']}, batch {r['batch']}", f"{r['values']:.2g}",
                     r["rule"], spread(tot["full"], 1.0, 2), spread(tot["quick"], 1.0, 2),
                     f"{comp['full']:.2f} / {comp['quick']:.2f}",
                     f"{train['quick'] / train['full']:.1f}x",
                     ("yes" if r["rule_strictly_right"] else "within spread")
                     if r["rule_right"] else "no"])
    right = sum(r["rule_right"] for r in rep["shapes"])
    quick_right = sum(r["rule_right"] for r in rep["shapes"] if r["rule"] == "quick")
    n_quick = sum(r["rule"] == "quick" for r in rep["shapes"])
    table = md(["model", "rows x epochs", "elementwise values", "rule", "full: compile + train, s",
                "quick: compile + train, s", "compile s, full / quick", "quick train / full train",
                "rule right"], rows)
    rule = rep["meta"]["rule"]
    return (table + f"\nThe rule (quick when {rule['QUICK_STEP_S']:g} s per step + "
            f"{rule['QUICK_VALUE_S']:g} s per value <= {rule['QUICK_SAVING_S']:g} s) picked the "
            f"faster way or one within the runs' spread in {right}/{len(rows)} shapes; its quick "
            f"picks in {quick_right}/{n_quick}.\n")
