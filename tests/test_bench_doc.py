"""BENCHMARKS.md and the README's benchmark blocks are generated from the committed raw
results (``scripts/bench_doc.py``), and the tables compute what they claim from fixed values."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from jaxmlp.bench import startup_tables, tables, threshold_tables

ROOT = Path(__file__).resolve().parents[1]


def bench_doc():
    spec = importlib.util.spec_from_file_location("bench_doc", ROOT / "scripts" / "bench_doc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_match_the_committed_raw_results():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_doc.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = bench_doc()
    for path in doc.SOURCES.values():  # every source is committed
        assert (ROOT / path).is_file(), path
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert "{{" not in text and "}}" not in text
    assert "<!-- bench_doc:benchmarks -->" in (ROOT / "README.md").read_text()


def test_a_hand_edit_is_caught(tmp_path, monkeypatch):
    doc = bench_doc()
    fake = tmp_path / "BENCHMARKS.md"
    fake.write_text((ROOT / "BENCHMARKS.md").read_text().replace("x [", "x  [", 1))
    monkeypatch.setattr(doc, "BENCHMARKS", fake)
    monkeypatch.setattr(doc, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    assert doc.main(["--check"]) == 1
    assert doc.main([]) == 0 and doc.main(["--check"]) == 0  # regenerated


def test_unknown_placeholder_is_an_error(tmp_path, monkeypatch):
    doc = bench_doc()
    t = tmp_path / "t.md"
    t.write_text("{{headline}}\n{{no_such_part}}\n")
    monkeypatch.setattr(doc, "TEMPLATE", t)
    with pytest.raises(SystemExit, match="no_such_part"):
        doc.render_benchmarks(doc.load())


def s(*vals):
    v = list(vals)
    return {"median": sorted(v)[len(v) // 2], "min": min(v), "max": max(v), "n": len(v),
            "values": v}


def test_headline_uses_each_peers_fastest_form_and_inverts_e2e_ratios():
    sp = lambda m, lo, hi, ttr=None: {"median": m, "min": lo, "max": hi,
                                      **({"time_to_result": ttr} if ttr else {})}
    inproc = {"workloads": {
        "W1": {"speedup": {"pytorch": sp(6.0, 5.0, 7.0, sp(1.5, 1.4, 1.6)),
                           "pytorch_1t": sp(4.0, 3.5, 4.5, sp(1.2, 1.1, 1.3)),
                           "sklearn": sp(3.0, 2.9, 3.1, sp(0.2, 0.1, 0.3))},
               "frameworks": {}},
        "W3": {"frameworks": {"jaxmlp": {"total_s": s(3.0, 3.0, 3.0), "run_s": s(1.0, 2.0, 1.0)},
                              "pytorch": {"total_s": s(8.0, 8.0, 8.0)},
                              "pytorch_procs": {"total_s": s(4.0, 6.0, 4.0)},
                              "sklearn": {"total_s": s(5.0, 5.0, 5.0)}},
               "speedup_vs_fastest": {"pytorch": sp(1.33, 1.2, 1.4), "sklearn": sp(1.6, 1.5, 1.7)}}}}
    e2e = {"meta": {"quick": False}, "cases": {}, "ratios": {}}
    rounds = lambda *w: [{"round": i + 1, "wall_s": x, "ok": True} for i, x in enumerate(w)]
    for name, walls in (("jaxmlp_cold", (2.0, 2.0)), ("jaxmlp_warm", (1.0, 1.0)),
                        ("sklearn", (4.0, 4.0)), ("sklearn_cores", (3.0, 2.0)),
                        ("pytorch", (8.0, 8.0))):
        e2e["cases"][f"sweep/{name}"] = {"job": "sweep", "name": name, "label": name,
                                         "rounds": rounds(*walls)}
    rows = {(r.split(" | ")[0].lstrip("| "), r.split(" | ")[1]): r
            for r in tables.headline(inproc, e2e).splitlines()[2:]}
    # W1 vs PyTorch: the faster PyTorch form is the one jaxmlp beats least (1 thread here)
    assert "| 4.00x [3.50–4.50] | 1.20x [1.10–1.30] |" in rows[("W1", "PyTorch eager")]
    # W3 train only: the fastest form's fits (pytorch_procs, rounds 4 and 6) over jaxmlp's run
    # (1 and 2): ratio of medians 4/1 ... per-round 4/1 = 4 and 6/2 = 3
    w3 = rows[("W3", "PyTorch eager")]
    assert "| 4.00x [3.00–4.00] | 1.33x [1.20–1.40] |" in w3
    # whole command vs scikit-learn's fastest form (a process per core: 3 and 2 s): cold jaxmlp
    # 2 s -> speedup 2.5/2 = 1.25, per round 1.5 and 1.0
    sk = rows[("W3", "scikit-learn")]
    assert sk.endswith("| 1.25x [1.00–1.50] | 2.50x [2.00–3.00] |")


def test_threshold_scores():
    three = lambda t: [t, t * 1.005, t * 1.01]          # a path's runs: 1% spread
    mat = [{"width": w, "depth": 1, "batch": 32, "rule_is": "materialised",
            "train_s": {"materialised": a, "xla": b}, "rule_over_best_other": a / b,
            "rule_spread": 0.02, "strict": a <= b, "within_spread": a <= b * 1.02,
            "runs": {"materialised": three(a), "xla": three(b), "rule": three(a)}, "tie": tie}
           for w, a, b, tie in ((16, 1.0, 2.0, False), (64, 1.01, 1.0, True),
                                (256, 1.5, 1.0, False))]
    case = lambda F, ok: {"run_flops": F, "ok": ok, "rule_over_other": 1.0 if ok else 1.3}
    sr = [{"width": 16, "depth": 1, "batch": 32, "cases": [case(1e10, True), case(1e12, False)],
           "ways": {"short": {"compile_s": 0.5, "epoch_s": 0.01},
                    "full": {"compile_s": 1.0, "epoch_s": 0.008}}}]
    text = threshold_tables.thresholds({"meta": {"MATERIALISE_MAX": 32768, "SHORT_RUN_FLOPS": 3e11,
                                       "run_flops": [1e10, 1e12]},
                              "materialise": mat, "short_run": sr})
    assert "in **1/3** shapes (33%), 2/3 (67%) within the spread" in text
    assert "worst case 1.500x the faster one (width 256" in text
    # the runs that separate the rule from the other path (16 and 256): right in one of two
    assert "the fastest other path's do not overlap, 2 shapes, the rule picks the faster in **1/2** (50%); the other 1 are ties" in text
    # the uniform alternatives on the same runs: materialised wins 16 (and 64 within 1%)
    assert "every layer materialised would score 1/3 strict and 2/3 within its own spread" in text
    assert "every layer on XLA's product would score 2/3 strict and 2/3 within its own spread" in text
    # and beyond noise (16 and 256 separate; 64's runs overlap at 1.01): each path wins one
    assert ("every layer materialised would score 1/3 strict and 2/3 within its own spread; "
            "where its runs and the fastest other path's do not overlap (2 shapes) it is the "
            "faster in 1/2.") in text
    on_xla = text.split("every layer on XLA's product would score")[1]
    assert on_xla.startswith(" 2/3 strict and 2/3 within its own spread; where its runs and "
                             "the fastest other path's do not overlap (2 shapes) it is the "
                             "faster in 1/2.")
    assert "in **1/2** cases (50%); worst case 1.30x" in text
    assert "| 16 | 1 | 32 | 0.50 | 1.00 | 1.25 | y **n** |" in text


def test_steplog_cost_table():
    from jaxmlp.bench import tables
    rep = {"rows": [{"workload": "W9", "name": "toy", "reports": {"auto": 3, "every step": 40},
                     "bit_identical": {"off": True, "auto": True, "every step": True},
                     "train_s": {"off": [1.0, 2.0, 1.0], "auto": [1.01, 2.04, 1.03],
                                 "every step": [2.0, 4.0, 2.0]}}]}
    text = tables.steplog_cost(rep)
    # per-round ratios 1.01, 1.02, 1.03: median 1.02, at the bound; every step 2.00
    assert "| W9 toy | 1.0000 [1.0000–2.0000] | 1.0300 [1.0100–2.0400] | 1.020 | 3 |" in text
    assert "| 2.00 | 40 | yes |" in text
    assert "W9 within (the runs without reports alone spread 100%)" in text
    rep["rows"][0]["train_s"]["auto"] = [1.05, 2.1, 1.05]
    rep["rows"][0]["bit_identical"]["auto"] = False
    text = tables.steplog_cost(rep)
    assert "W9 **beyond**" in text and "| **no** |" in text


def test_import_time_table():
    rep = {"rows": [{"ml_dtypes": "0.6.0", "numpy": "2.4.6", "case": "import ml_dtypes",
                     "wall_s": [0.1, 0.2, 0.1]},
                    {"ml_dtypes": "0.6.0", "numpy": "2.4.6", "case": "import jax",
                     "wall_s": [0.5, 0.6, 0.4]},
                    {"ml_dtypes": "0.7.0", "numpy": "2.4.6", "case": "import ml_dtypes",
                     "wall_s": [0.6, 0.7, 0.5]},
                    {"ml_dtypes": "0.7.0", "numpy": "2.4.6", "case": "import jax",
                     "wall_s": [1.0, 1.2, 1.1]}]}
    text = startup_tables.import_time(rep)
    # the last case relative to the release with its lowest median (0.6.0: 0.5 s)
    assert "| ml_dtypes 0.6.0 (NumPy 2.4.6) | 0.100 [0.100–0.200] | 0.500 [0.400–0.600] | 1.00x |" in text
    assert "| ml_dtypes 0.7.0 (NumPy 2.4.6) | 0.600 [0.500–0.700] | 1.100 [1.000–1.200] | 2.20x |" in text
    assert "relative to ml_dtypes 0.6.0" in text


def test_compile_profile_table():
    row = lambda v, x: {"variant": v, "xla_compile_s": x, "hlo_passes_s": 0.03,
                        "fusion_emitter_cpu_s": 0.5 * x, "fusions": 140, "loop_fusions": 120,
                        "library_calls": 20, "fusion_kernels_emitted": 100, "train_s": 0.06}
    plain = {"variant": "c", "xla_compile_s": 0.3, "fusions": 40, "loop_fusions": 30,
             "library_calls": 10, "fusion_kernels_emitted": 30}
    rep = {"rows": [row("a", 0.9), row("a", 1.1), row("a", 1.0), row("b", 0.6), plain]}
    text = startup_tables.compile_profile(rep)
    assert "| XLA compile (wall) | 1.000 [0.900–1.100] | 0.600 [0.600–0.600] |" in text
    assert "| fusion emitter, summed over codegen threads | 0.500 [0.450–0.550] |" in text
    # stages a trace lacks count as 0 (e.g. the short-run variant has no fusion-emitter events)
    assert "| LLVM machine code | 0.000 [0.000–0.000] |" in text
    # a value the script measures itself (training, tracing) and a variant lacks: not measured
    assert "| training | 0.060 [0.060–0.060] | 0.060 [0.060–0.060] | – |" in text
    assert "| fusion kernels in the program | 140 | 140 | 40 |" in text
    assert text.splitlines()[0] == "| stage, s (median [min–max]) | a | b | c |"


def test_compile_tiers_table():
    run = lambda c, t: {"compile_s": c, "train_s": t, "total_s": c + t, "test_loss": 1.0}
    shape = lambda rule, right, strict, full, quick: {
        "inputs": 8, "hidden": [16, 16], "n_train": 1000, "epochs": 5, "batch": 32,
        "extra_estimate_s": 0.25, "rule": rule, "rule_right": right, "rule_strictly_right": strict,
        "runs": {"full": [run(*full), run(full[0], full[1] * 1.5)], "quick": [run(*quick)] * 2}}
    rep = {"meta": {"rule": {"QUICK_COSTS_S": {"steps": 3e-5, "inputs": 8e-9},
                             "QUICK_SAVING_S": 0.7}},
           "shapes": [shape("quick", True, True, (1.0, 0.2), (0.2, 0.4)),
                      shape("full", True, False, (1.0, 0.2), (0.2, 1.1)),
                      shape("full", False, False, (1.0, 0.4), (0.2, 0.6))]}
    text = startup_tables.compile_tiers(rep)
    # full: totals 1.2 and 1.3 -> median 1.25; quick train / full train from medians: 0.4 / 0.25
    assert ("| 8-16-16-10 | 1000 x 5, batch 32 | 0.25 | quick | 1.25 [1.20–1.30] | "
            "0.60 [0.60–0.60] | 1.00 / 0.20 | 1.6x | yes |") in text
    assert text.splitlines()[3].endswith("| within spread |")
    assert text.splitlines()[4].endswith("| no |")
    assert ("(quick when 3e-05 s per step, 8e-09 s per input add up to at most 0.7 s) picked "
            "the faster way or one within the runs' spread in 2/3 shapes; its quick picks in 1/1. Compile saved "
            "by the quick way, median over the shapes: 0.80 s.") in text
    assert "earlier rule" not in text  # measured with the rule it was scored with
    rep["meta"]["rescored"] = {"measured_with": {"QUICK_FIT_VALUES": 4e7}}
    for r, was in zip(rep["shapes"], (True, False, False)):
        r["measured_rule"] = {"rule_right": was}
    assert ("Measured with an earlier rule (quick at <= 4e+07 elementwise values), which was "
            "right in 1/3."
            in startup_tables.compile_tiers(rep))


def test_e2e_before_after_table():
    def rep(cold, warm, c_compile, w_train):
        case = lambda wall, comp, train: {"wall_s": {"median": wall}, "breakdown": {
            "compile_s": {"median": comp}, "train_s": {"median": train}}}
        ratio = lambda v: {"median": v}
        return {"cases": {"train/jaxmlp_cold": case(cold, c_compile, w_train),
                          "train/jaxmlp_warm": case(warm, 0.1, w_train)},
                "ratios": {"train": {"jaxmlp_cold/floor": ratio(cold / 0.5),
                                     "jaxmlp_cold/sklearn": ratio(cold / 1.5),
                                     "jaxmlp_warm/floor": ratio(warm / 0.5),
                                     "jaxmlp_warm/sklearn": ratio(warm / 1.5)}}}
    text = startup_tables.e2e_before_after(rep(3.0, 1.0, 2.5, 0.1), rep(2.0, 1.25, 1.0, 0.3))
    assert "| empty compile cache | wall s | 3.00 | 2.00 |" in text
    assert "| empty compile cache | compile column, s | 2.50 | 1.00 |" in text
    assert "| filled cache | train column, s | 0.10 | 0.30 |" in text
    assert "| filled cache | wall / floor | 2.00x | 2.50x |" in text
    # 1.00 s saved cold, 0.25 s paid per warm run: even after 4 re-runs
    assert "A first run and 4.0 re-runs from the cache cost the same" in text


def test_targets_across_runs_gives_each_runs_value_and_status():
    raw = bench_doc().load()
    runs = [("now", raw["inproc"]), ("before", raw["inproc_before"])]
    lines = tables.targets_across(runs).splitlines()
    assert lines[0] == "| target | now | before |"
    per = [tables.target_rows(inp, None) for _, inp in runs]
    assert len(lines) == 2 + len(per[0])
    word = {True: "met", False: "**missed**", None: "n/a"}
    for line, (t, v0, m0), (t1, v1, m1) in zip(lines[2:], *per):
        assert t == t1
        assert line == f"| {t} | {v0} ({word[m0]}) | {v1} ({word[m1]}) |"
