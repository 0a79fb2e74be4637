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

