"""``jaxmlp bench --e2e``: the pure parts with fixed values, the CLI's bad-input handling, the
markdown script, and one tiny end-to-end run of the cheap cases."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxmlp.bench.e2e import harness, results
from jaxmlp.bench.report import evaluate_targets as bench_targets

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "jaxmlp" / "bench" / "e2e" / "peers"
TIMING = {"import_s": 0.5, "data_s": 0.1, "compile_s": 0.2, "train_s": 0.1, "write_s": 0.05,
          "plot_s": 0.15}


def rnd(r, wall, ok=True, **kw):
    return {"round": r, "wall_s": wall, "ok": ok, **kw}


# ------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize("values, expected", [
    ([3.0, 1.0, 2.0], (2.0, 1.0, 3.0, 3)),
    ([4.0, 1.0], (2.5, 1.0, 4.0, 2)),
    ([5.0, None, math.nan, 1.0, math.inf], (3.0, 1.0, 5.0, 2)),
])
def test_summary_median_min_max(values, expected):
    s = results.summary(values)
    assert (s["median"], s["min"], s["max"], s["n"]) == expected


def test_summary_of_nothing_is_none():
    assert results.summary([]) is None
    assert results.summary([None, math.nan]) is None


def test_ratio_of_medians_and_per_round_range():
    mine = [rnd(1, 2.0), rnd(2, 4.0), rnd(3, 9.0, ok=False)]
    peer = [rnd(1, 1.0), rnd(2, 4.0), rnd(3, 1.0)]
    r = results.ratio(mine, peer)
    assert r["rounds"] == [1, 2]  # round 3 failed for jaxmlp: not paired
    assert r["median"] == pytest.approx(3.0 / 2.5)
    assert r["values"] == pytest.approx([2.0, 1.0])
    assert (r["min"], r["max"]) == (1.0, 2.0)
    assert results.ratio(mine, [rnd(1, 1.0, ok=False)]) is None


def test_targets_met_missed_and_not_run():
    ratios = {"train": {"jaxmlp_warm/floor": {"median": 1.5},      # exactly the threshold: met
                        "jaxmlp_warm/sklearn": {"median": 1.2}},   # above 1.0: missed
              "sweep": {"jaxmlp_warm/pytorch_cores": {"median": 0.2}}}
    by = {t["target"]: t for t in results.evaluate_targets(ratios)}
    assert len(by) == len(results.TARGETS) == 6
    assert by["train: jaxmlp_warm <= 1.5x floor"]["met"] is True
    assert by["train: jaxmlp_warm <= 1x sklearn"]["met"] is False
    assert by["train: jaxmlp_warm <= 1x sklearn"]["measured"] == 1.2
    assert by["train: jaxmlp_cold <= 2x floor"]["met"] is None
    assert by["sweep: jaxmlp_warm <= 0.33x pytorch_cores"]["met"] is True
    only_train = results.evaluate_targets(ratios, {"train"})
    assert [t["job"] for t in only_train] == ["train"] * 3


def test_bench_time_to_model_targets():
    report = {"workloads": {wl: {"frameworks": {}, "time_to_model": {"sklearn": {"median": v}}}
                            for wl, v in (("W1", 0.8), ("W4", 0.5))}}
    ttm = {t["workload"]: t for t in bench_targets(report)
           if t["metric"] == "time_to_model_sklearn"}
    assert (ttm["W1"]["threshold"], ttm["W1"]["measured"], ttm["W1"]["met"]) == (1.0, 0.8, True)
    assert (ttm["W4"]["threshold"], ttm["W4"]["measured"], ttm["W4"]["met"]) == (0.3, 0.5, False)


# ------------------------------------------------------------------------------ reading runs
def test_timing_json_read_when_present_and_none_otherwise(tmp_path):
    assert results.read_timing(tmp_path) is None
    (tmp_path / "timing.json").write_text("{not json")
    assert results.read_timing(tmp_path) is None
    (tmp_path / "timing.json").write_text(json.dumps({**TIMING, "total_s": 1.2}))
    assert results.read_timing(tmp_path)["total_s"] == 1.2


def test_breakdown_with_and_without_timing_json():
    with_t = [rnd(1, 1.5, timing={**TIMING, "total_s": 1.2}),
              rnd(2, 1.7, timing={**TIMING, "total_s": 1.3})]
    b = results.breakdown(with_t)
    assert b["startup_s"]["median"] == pytest.approx(0.35)  # wall - total_s: 0.3 and 0.4
    assert b["import_s"]["median"] == 0.5 and b["total_s"]["median"] == 1.25
    without = [rnd(1, 2.0, timing=None, reported={"compile_s": 0.7, "train_s": 0.05})]
    b = results.breakdown(without)
    assert b["compile_s"]["median"] == 0.7 and b["train_s"]["median"] == 0.05
    assert all(b[k] is None for k in ("startup_s", "import_s", "data_s", "write_s", "plot_s",
                                      "total_s"))


def test_read_jaxmlp_train_and_sweep_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(
        {"compile_s": 0.7, "train_s": 0.05, "test_accuracy": 0.955, "epochs_run": 50}))
    r = results.read_jaxmlp_run("train", run)
    assert r == {"timing": None, "reported": {"compile_s": 0.7, "train_s": 0.05},
                 "accuracies": [0.955]}
    sw = tmp_path / "sweep"
    sw.mkdir()
    (sw / "results.json").write_text(json.dumps(
        {"rows": [{"test_accuracy": 0.9}, {"test_accuracy": 0.8}],
         "info": {"compile_s": 0.76, "run_s": 1.46, "total_s": 2.4}}))
    (sw / "timing.json").write_text(json.dumps({**TIMING, "total_s": 3.0}))
    r = results.read_jaxmlp_run("sweep", sw)
    assert r["reported"] == {"compile_s": 0.76, "train_s": 1.46}
    assert r["accuracies"] == [0.9, 0.8] and r["timing"]["total_s"] == 3.0
    (sw / "results.json").unlink()  # results.csv alone still gives the accuracies
    (sw / "results.csv").write_text("model,width,test_accuracy\n0,16,0.75\n1,32,0.25\n")
    assert results.read_jaxmlp_run("sweep", sw)["accuracies"] == [0.75, 0.25]
    assert results.read_jaxmlp_run("train", tmp_path / "missing")["accuracies"] == []


def test_read_peer_results(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"test_accuracy": 0.97, "fit_s": 0.12}))
    assert results.read_peer_result(p) == {"timing": None, "reported": {"train_s": 0.12},
                                           "accuracies": [0.97]}
    p.write_text(json.dumps({"models": [{"test_accuracy": 0.9}, {"test_accuracy": 0.7}],
                             "fits_s": 6.5}))
    r = results.read_peer_result(p)
    assert r["accuracies"] == [0.9, 0.7] and r["reported"] == {"train_s": 6.5}
    assert results.read_peer_result(tmp_path / "none.json")["accuracies"] == []


def test_accuracy_check_flags_more_than_three_points():
    def case(job, name, accs):
        return {"job": job, "name": name, "rounds": [rnd(1, 1.0, accuracies=accs)]}
    cases = {"sweep/jaxmlp_warm": case("sweep", "jaxmlp_warm", [0.96, 0.94]),
             "sweep/sklearn": case("sweep", "sklearn", [0.95, 0.95]),
             "sweep/pytorch": case("sweep", "pytorch", [0.90, 0.90])}
    for c in cases.values():
        c["accuracy"] = results.accuracy_of(c["rounds"])
    assert cases["sweep/jaxmlp_warm"]["accuracy"] == {"best": 0.96, "mean": pytest.approx(0.95),
                                                      "n_models": 2}
    checks = {c["case"]: c for c in results.accuracy_checks(cases)}
    assert set(checks) == {"sklearn", "pytorch"}
    assert checks["sklearn"]["passed"] is True
    assert checks["pytorch"]["passed"] is False
    assert checks["pytorch"]["difference"] == pytest.approx(-0.05)


# ------------------------------------------------------------------------------ rendering
def fixed_report():
    def case(name, label, rounds):
        return {"job": "train", "name": name, "label": label, "rounds": rounds}
    return {"meta": {"quick": False, "rounds": 2, "jobs": {"train": "digits job"},
                     "machine": {"Model name": "CPU X", "cpu_count": 2, "python": "3.11"}},
            "cases": {
                "train/jaxmlp_warm": case("jaxmlp_warm", "jaxmlp warm", [
                    rnd(1, 1.5, timing={**TIMING, "total_s": 1.2}, accuracies=[0.95]),
                    rnd(2, 1.7, timing={**TIMING, "total_s": 1.3}, accuracies=[0.96])]),
                "train/sklearn": case("sklearn", "sklearn script", [
                    rnd(1, 1.0, reported={"train_s": 0.12}, accuracies=[0.97]),
                    rnd(2, 1.2, reported={"train_s": 0.12}, accuracies=[0.97])]),
                "train/floor": case("floor", "floor", [rnd(1, 1.0), rnd(2, 1.0)])}}


EXPECTED_MARKDOWN = """\
### train: digits job

| case | wall s, median [min–max] | start-up | import | data | compile | train | write | plot | total | test acc best / mean (or MSE) |
|---|---|---|---|---|---|---|---|---|---|---|
| jaxmlp warm | 1.60 [1.50–1.70] | 0.35 | 0.50 | 0.10 | 0.20 | 0.10 | 0.05 | 0.15 | 1.25 | 0.9550 / 0.9550 |
| sklearn script | 1.10 [1.00–1.20] | – | – | – | – | 0.12 | – | – | – | 0.9700 / 0.9700 |
| floor | 1.00 | – | – | – | – | – | – | – | – | – |

| ratio of wall times | median [min–max] | target | status |
|---|---|---|---|
| jaxmlp_warm / sklearn | 1.45x [1.42–1.50] | <= 1x | MISSED |
| jaxmlp_warm / floor | 1.60x [1.50–1.70] | <= 1.5x | MISSED |
| jaxmlp_cold / floor | – | <= 2x | n/a (not run) |
"""


def test_markdown_of_a_fixed_report():
    rep = results.analyse(fixed_report())
    md = results.render(rep, markdown=True)
    assert md.startswith(EXPECTED_MARKDOWN)
    assert ("accuracy check (mean test accuracy within 3 points of jaxmlp's; test MSE within "
            "25%): all agree") in md
    assert "targets: 0 met, 2 MISSED, 1 n/a" in md
    assert rep["ratios"]["train"]["jaxmlp_warm/floor"]["values"] == pytest.approx([1.5, 1.7])


def test_bench_tables_script_renders_a_committed_json(tmp_path):
    path = tmp_path / "e2e.json"
    path.write_text(json.dumps(fixed_report()))
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--e2e",
                        str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(EXPECTED_MARKDOWN)
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--e2e",
                          str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_bench_tables_renders_an_ab_result(tmp_path):
    side = lambda t, loss: {"train_s_median": t, "train_s_min": t - 0.01, "train_s_max": t + 0.01,
                            "n": 9, "compile_s_median": 0.5, "train_loss": [loss]}
    rep = {"meta": {"base": "a" * 40, "head": "b" * 40, "head_dirty": False, "rounds": 3,
                    "reps": 3, "cpu_model": "CPU", "cpu_count": 2, "command": "ab"},
           "workloads": {"W1": {"name": "w1", "base": side(0.05, 0.25), "head": side(0.055, 0.25)},
                         "W4": {"name": "w4", "base": side(0.1, 0.5), "head": side(0.1, 0.75)}}}
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(rep))
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--ab",
                        str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| W")]
    assert rows[0] == ("| W1 w1 | 0.0500 [0.0400–0.0600] | 0.0550 [0.0450–0.0650] | 1.100 | "
                       "0.50, 0.50 | identical |")
    assert rows[1].endswith("| 1.000 | 0.50, 0.50 | differ: [0.5] vs [0.75] |")
    cmd = lambda w: {m: {"wall_s": w * (1 if m == "cold" else 0.5), "compile_s": 1.0,
                         "import_s": 0.8} for m in ("cold", "warm")}
    rep["commands"] = {"train": {"median": {"base": cmd(2.0), "head": cmd(2.2)}}}
    path.write_text(json.dumps(rep))
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--ab",
                        str(path)], capture_output=True, text=True, timeout=60)
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| `jaxmlp")]
    assert rows == ["| `jaxmlp train`, empty compile cache | 2.000 | 2.200 | 1.100 | 1.000, 1.000 | 0.800, 0.800 |",
                    "| `jaxmlp train`, filled compile cache | 1.000 | 1.100 | 1.100 | 1.000, 1.000 | 0.800, 0.800 |"]


# ------------------------------------------------------------------------------ cases and CLI
def test_case_selection():
    specs = harness.case_specs(harness.job_epochs(quick=False), cores=4)
    assert harness.select_cases(specs, "train") == [
        "train/jaxmlp_cold", "train/jaxmlp_warm", "train/sklearn", "train/pytorch",
        "train/jax_script", "train/floor"]
    assert harness.select_cases(specs, "sweep/sklearn_cores,train/floor") == [
        "train/floor", "sweep/sklearn_cores"]
    assert len(harness.select_cases(specs, None)) == 6 + 6 + 5 + 4 + 4  # train sweep W1 W4 W2
    # the plain JAX script runs the digits jobs at their epochs
    assert specs["W1/jax_script"]["argv"][-3:] == ["100", "--out", "{out}"]
    assert harness.select_cases(specs, "W4") == [
        "W4/jaxmlp_cold", "W4/jaxmlp_warm", "W4/sklearn", "W4/pytorch"]
    # the whole-command form of each in-process workload: its model, rows and epochs
    w4 = specs["W4/jaxmlp_cold"]["argv"]
    assert w4[w4.index("--hidden") + 1] == "64" and w4[w4.index("--epochs") + 1] == "10"
    assert w4[w4.index("--dataset") + 1] == "{data}/W4.npz"
    assert specs["W4/sklearn"]["argv"][specs["W4/sklearn"]["argv"].index("--data") + 1] == \
        "{data}/W4.npz"
    w1 = specs["W1/jaxmlp_warm"]["argv"]
    assert w1[w1.index("--epochs") + 1] == "100"
    sw = specs["sweep/jaxmlp_cold"]["argv"]
    assert sw[sw.index("--lr") + 1] == "0.01,0.03,0.1,0.3"  # W3's grid
    with pytest.raises(ValueError, match="unknown case"):
        harness.select_cases(specs, "train/nope")
    assert "--jobs" in specs["sweep/sklearn_cores"]["argv"]
    assert specs["sweep/sklearn_cores"]["argv"][-3] == "4"  # one worker per core
    assert harness.command_line(specs["train/jaxmlp_cold"]).startswith(
        "JAXMLP_COMPILE_CACHE={a new empty folder per run} {python} -m jaxmlp.cli train")


@pytest.mark.parametrize("argv", [["--e2e", "--rounds", "0"], ["--e2e", "--cases", "nope"],
                                  ["--e2e", "--no-such-flag"]])
def test_bad_input_is_one_error_line_exit_2(argv):
    p = subprocess.run([sys.executable, "-m", "jaxmlp.cli", "bench", *argv], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2
    assert p.stderr.startswith("error:") and len(p.stderr.strip().splitlines()) == 1


def test_peer_scripts_do_not_use_jaxmlp_and_import_jaxmlp_stays_light():
    scripts = [s for s in PEERS.glob("*.py") if s.name != "__init__.py"]
    assert len(scripts) == 7
    for script in scripts:
        assert "jaxmlp" not in script.read_text(), script
    code = ("import sys, jaxmlp; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'torch', 'matplotlib') or m.startswith('jaxmlp.bench')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_pytorch_cases_skipped_with_a_note_without_torch(tmp_path, monkeypatch, capsys):
    import jaxmlp.bench.machine
    monkeypatch.setattr(jaxmlp.bench.machine, "torch_available",
                        lambda: (False, "torch is not installed in this Python"))
    rc = harness.main(["--quick", "--cases", "train/pytorch,train/floor", "--out", str(tmp_path)])
    assert rc == 0
    rep = json.loads((tmp_path / "e2e.json").read_text())
    assert list(rep["cases"]) == ["train/floor"]
    assert rep["meta"]["notes"] == ["PyTorch cases skipped: torch is not installed in this Python"]
    assert rep["cases"]["train/floor"]["rounds"][0]["wall_s"] > 0
    assert "note: PyTorch cases skipped" in capsys.readouterr().out


def test_mse_jobs_read_test_mse_and_check_it_relatively(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"compile_s": 0.5, "train_s": 0.1,
                                                  "test_mse": 0.02, "test_accuracy": None}))
    assert results.read_jaxmlp_run("W4", run)["accuracies"] == [0.02]
    p = tmp_path / "peer.json"
    p.write_text(json.dumps({"test_mse": 0.024, "fit_s": 1.0}))
    assert results.read_peer_result(p)["accuracies"] == [0.024]
    cases = {f"W4/{n}": {"job": "W4", "name": n, "rounds": [rnd(1, 1.0, accuracies=[v])]}
             for n, v in (("jaxmlp_warm", 0.02), ("sklearn", 0.024), ("pytorch", 0.03))}
    for c in cases.values():
        c["accuracy"] = results.accuracy_of(c["rounds"])
    checks = {c["case"]: c for c in results.accuracy_checks(cases)}
    # within 25% of the larger MSE: 0.004 <= 0.006 passes, 0.01 > 0.0075 fails
    assert checks["sklearn"]["passed"] is True and checks["sklearn"]["metric"] == "test_mse"
    assert checks["pytorch"]["passed"] is False


# ------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_e2e_quick_smoke(tmp_path):
    cases = "train/floor,train/jaxmlp_cold,train/jaxmlp_warm,train/sklearn,train/jax_script"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--e2e", "--quick",
                        "--cases", cases, "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rep = json.loads((tmp_path / "e2e.json").read_text())
    assert list(rep["cases"]) == ["train/jaxmlp_cold", "train/jaxmlp_warm", "train/sklearn",
                                  "train/jax_script", "train/floor"]  # the run order
    assert rep["meta"]["quick"] is True and rep["meta"]["rounds"] == 1
    assert rep["meta"]["epochs"] == harness.job_epochs(quick=True)
    assert rep["meta"]["warm_cache_files"]["train"] > 0  # the warm-up run filled it
    for key, c in rep["cases"].items():
        assert c["warmup"]["ok"] and c["warmup"]["wall_s"] > 0, key
        assert [r["round"] for r in c["rounds"]] == [1]
        assert c["rounds"][0]["ok"] and c["rounds"][0]["wall_s"] > 0, key
        assert c["wall_s"]["median"] == c["rounds"][0]["wall_s"]
        if c["name"] != "floor":
            assert 0.3 < c["accuracy"]["mean"] <= 1.0, key  # 2 epochs: well above 10% chance
    cold, warm = rep["cases"]["train/jaxmlp_cold"], rep["cases"]["train/jaxmlp_warm"]
    for c in (cold, warm):
        assert c["breakdown"]["compile_s"]["median"] > 0 and c["breakdown"]["train_s"]["median"] > 0
    # the filled cache loads the programs instead of compiling them
    assert warm["breakdown"]["compile_s"]["median"] < cold["breakdown"]["compile_s"]["median"]
    assert "--epochs 2" in warm["command"] and warm["compile_cache"] == "warm"
    r = rep["ratios"]["train"]
    assert set(r) == {f"{m}/{p}" for m in ("jaxmlp_cold", "jaxmlp_warm")
                      for p in ("sklearn", "jax_script", "floor")}
    assert r["jaxmlp_warm/floor"]["median"] == pytest.approx(
        warm["wall_s"]["median"] / rep["cases"]["train/floor"]["wall_s"]["median"])
    assert [t["met"] is not None for t in rep["targets"]] == [True, True, True]
    assert "ratio of wall times" in p.stdout and "jaxmlp_warm / floor" in p.stdout


@pytest.mark.slow
def test_e2e_quick_file_jobs(tmp_path):
    """W4 (regression) and W2 as whole commands on the .npz the harness writes: jaxmlp and
    every peer script run and report a test metric of the same kind."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--e2e", "--quick",
                        "--cases", "W4/jaxmlp_warm,W4/sklearn,W4/pytorch,W2/sklearn",
                        "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rep = json.loads((tmp_path / "e2e.json").read_text())
    w4 = {c["name"]: c for c in rep["cases"].values() if c["job"] == "W4"}
    assert set(w4) >= {"jaxmlp_warm", "sklearn"}
    for c in w4.values():  # a test MSE: small and positive (2 epochs of car-sensor)
        assert 0 < c["accuracy"]["mean"] < 0.5, c
    checks = [c for c in rep["accuracy_checks"] if c["job"] == "W4"]
    assert checks and all(c["metric"] == "test_mse" for c in checks)
    w2 = rep["cases"]["W2/sklearn"]["accuracy"]["mean"]
    assert 0.1 < w2 <= 1.0  # an accuracy over 10 classes
