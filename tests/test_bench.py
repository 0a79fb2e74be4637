"""The benchmark harness runs end to end in quick mode (no timing is asserted)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scripts" / "bench.py"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.slow
def test_bench_quick_runs_and_losses_agree(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH), "--quick", "--workloads", "W1,W4,W3",
                        "--frameworks", "jaxmlp,pytorch,sklearn", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "loss-agreement check: PASSED" in p.stdout
    rep = json.loads((tmp_path / "bench.json").read_text())
    assert {"meta", "gemm_peak", "workloads", "targets", "notes", "loss_check_passed"} <= set(rep)
    assert rep["loss_check_passed"] is True
    assert rep["gemm_peak"]["peak_gflops"] > 0
    expected = {"jaxmlp", "sklearn"} | ({"pytorch"} if HAVE_TORCH else set())
    for wl in ("W1", "W4"):
        r = rep["workloads"][wl]
        assert set(r["frameworks"]) == expected
        assert r["loss_check_passed"] is True
        counted = [c for c in r["loss_checks"] if c.get("counted", True)]
        assert counted and all(c["passed"] for c in counted)
        # the same-order checks always count, at round-off: PyTorch, and scikit-learn's whole
        # run repeated (untimed) in jaxmlp's batch order
        same = [c for c in counted if "same batch order" in c["check"]]
        assert {c["check"].split(" vs ")[1].split(" ")[0] for c in same} == (
            {"sklearn", "pytorch"} if HAVE_TORCH else {"sklearn"})
        assert all(c["rtol"] == 1e-4 and c["passed"] for c in same), same
        # only scikit-learn's own-shuffle comparison is reported without counting (quick mode)
        assert all("own shuffle" in c["check"] for c in r["loss_checks"] if c not in counted)
        j = r["frameworks"]["jaxmlp"]
        for key in ("train_s", "compile_s", "samples_per_s", "gflops", "peak_fraction",
                    "final_loss"):
            assert key in j
        assert set(r["speedup"]) == expected - {"jaxmlp"}
        for s in r["speedup"].values():
            assert {"median", "min", "max"} <= set(s)
    # W3: every peer sequentially and as a process per core, all 64 models checked
    w3 = rep["workloads"]["W3"]
    forms = {"sklearn", "sklearn_procs"} | ({"pytorch", "pytorch_procs"} if HAVE_TORCH else set())
    assert {"jaxmlp", "jaxmlp_cores"} | forms == set(w3["frameworks"])
    assert all("total_s" in e for e in w3["frameworks"].values()), w3["frameworks"]
    assert set(w3["speedup"]) == forms
    fastest = w3["speedup_vs_fastest"]
    assert set(fastest) == {"sklearn"} | ({"pytorch"} if HAVE_TORCH else set())
    for family, s in fastest.items():  # the ratio against the peer's fastest form
        assert s["median"] == min(w3["speedup"][f]["median"] for f in forms if f.startswith(family))
    checks = {c["check"].split(" vs ")[-1]: c for c in w3["loss_checks"]}
    for fw in forms | {"jaxmlp", "sklearn_in_order"}:
        c = checks[fw]
        assert c["models"] == 64 and c["passed"], c
        if fw not in ("sklearn", "sklearn_procs"):  # same weights, same order: round-off only
            assert c["rtol"] == 1e-4 and c["agreeing"] == 64
    # the tables are generated from the raw result (scripts/bench_tables.py --inproc)
    t = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--inproc",
                        str(tmp_path / "bench.json")], capture_output=True, text=True, cwd=ROOT)
    assert t.returncode == 0, t.stderr
    lines = t.stdout.splitlines()
    w1 = rep["workloads"]["W1"]
    mine = next(ln for ln in lines if ln.startswith("| W1 | jaxmlp |"))
    assert f"| {w1['frameworks']['jaxmlp']['time_to_result_s']['median']:.3f} [" in mine
    sk = next(ln for ln in lines if ln.startswith("| W1 | sklearn |"))
    assert f"{w1['speedup']['sklearn']['time_to_result']['median']:.2f}x [" in sk
    assert any(ln.startswith("| W3 | per-model final loss jaxmlp vs sklearn_in_order | 64/64")
               for ln in lines)
    # the headline's train-only column (no whole-command results here: those are dashes)
    from jaxmlp.bench import tables
    head = tables.headline(rep, {"meta": {}, "cases": {}}).splitlines()
    row = next(ln for ln in head if ln.startswith("| W1 | scikit-learn |"))
    assert row.startswith(f"| W1 | scikit-learn | {w1['speedup']['sklearn']['median']:.2f}x [")
    assert row.endswith("| – | – |")
    if not HAVE_TORCH:  # skipped with a clear note, not an error
        assert any(n.startswith("PyTorch peer skipped") for n in rep["notes"])
    assert (tmp_path / "speedups.png").exists()


def test_bench_is_importable_with_main():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert callable(mod.main)
    assert mod.main(["--workloads", "W9"]) == 2  # bad workload: error, no run
