"""Each study in experiments/ runs in quick mode and its headline claim holds, with values.

The studies run in-process (``main([..., "--quick", "--out", tmp])``), once per module.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments"


sys.path.insert(0, str(ROOT / "scripts"))
import run_experiments  # noqa: E402  (the runner: its study loader and README renderer)

_load = run_experiments.load_study


def _run(name: str, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp(name)
    summary = _load(name).main(["--quick", "--out", str(out)])
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["headline"] == summary["headline"] and on_disk["quick"] is True
    for fig in summary["figures"]:
        assert (out / fig).stat().st_size > 1000, fig
    return summary, out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cache: dict = {}

    def get(name):
        if name not in cache:
            cache[name] = _run(name, tmp_path_factory)
        return cache[name]
    return get


def test_computation_graph_seed_values(run):
    s, out = run("computation_graph")
    c = s["claims"]
    assert (c["q"], c["f"]) == (3.0, -12.0)
    assert (c["dfdx"], c["dfdy"], c["dfdz"], c["dfdq"]) == (-4.0, -4.0, 3.0, -4.0)
    lr = c["lr"]
    # [x, y, z] <- [x, y, z] - lr (-4, -4, 3), so f' = (3 + 8 lr)(-4 - 3 lr) < -12.
    assert c["xyz_after_one_step"] == pytest.approx([-2 + 4 * lr, 5 + 4 * lr, -4 - 3 * lr])
    assert c["f_after_one_step"] == pytest.approx((3 + 8 * lr) * (-4 - 3 * lr))
    assert c["f_after_one_step"] < c["f_before"] and c["f_after_all_steps"] < c["f_after_one_step"]
    assert "trace.csv" in {p.name for p in out.iterdir()}


def test_perceptron_and_or_not_xor_and_mlps_solve_xor(run):
    s, _ = run("perceptron_xor")
    c = s["claims"]
    best = c["perceptron_best_acc"]
    assert best["and"] == 1.0 and best["or"] == 1.0
    assert best["xor"] == 0.75          # 3 of 4 at best, never 4 of 4
    assert c["linear_stack_acc_max"] <= 0.75
    assert c["collapse_max_abs_diff"] < 1e-5     # the stack is one linear map x W' + b'
    assert c["tanh_seeds_at_100pct"] >= 2 and c["relu_seeds_at_100pct"] >= 2
    assert c["tanh_acc_max"] == 1.0 and c["relu_acc_max"] == 1.0


def test_collapse_formula_matches_forward():
    mod = _load("perceptron_xor")
    import jax
    import jaxmlp
    params = jaxmlp.init_mlp(jax.random.PRNGKey(0), [2, 5, 3, 2], activation="identity")
    W, b = mod.collapse(params)
    x = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    out = np.asarray(jaxmlp.forward(params, x, activation="identity"))
    assert W.shape == (2, 2) and b.shape == (2,)
    np.testing.assert_allclose(out, x @ W + b, atol=1e-5)


def test_relu_x2_error_falls_and_never_beats_optimum(run):
    s, _ = run("relu_x2")
    c = s["claims"]
    ks, maxe, opt = c["ks"], np.asarray(c["max_abs_err"]), np.asarray(c["optimal_max_err"])
    assert opt == pytest.approx([1 / (2 * (k + 1) ** 2) for k in ks])
    # No network can beat the best piecewise-linear approximation with k + 1 pieces.
    assert np.all(maxe >= opt * (1 - 1e-3))
    assert maxe[-1] < maxe[0] / 10            # k = 1 -> 8: at least 10x smaller max error
    assert c["loglog_slope_max_err"] < -1.0
    assert np.all(np.asarray(c["ratio_to_optimal"])[1:] < 10)


def test_relu_x2_reference_formulas():
    mod = _load("relu_x2")
    for k in (1, 3, 8):
        # The shifted uniform interpolant equi-oscillates at +-1/(2(k+1)^2).
        x = np.linspace(-1, 1, 20001)
        knots = np.linspace(-1, 1, k + 2)
        err = np.interp(x, knots, knots ** 2) - x ** 2
        assert err.max() == pytest.approx(mod.interpolant_max_err(k), rel=1e-3)
        shifted = err - err.max() / 2
        assert np.abs(shifted).max() == pytest.approx(mod.best_linf_err(k), rel=1e-3)


def test_temperature_trends_and_distillation(run):
    s, _ = run("temperature")
    c = s["claims"]
    T = c["temps"]
    assert T == sorted(T) and 1.0 in T
    norm, ent, ece = (np.asarray(c[k]) for k in ("logit_norm", "entropy_bits", "ece_T1"))
    # Higher training T -> larger logits -> lower entropy at T = 1 (monotone in T).
    assert np.all(np.diff(norm) > 0)
    assert ent[0] > ent[T.index(1.0)] > ent[-1]
    # Low T leaves the model under-confident at T = 1: badly calibrated.
    assert ece[0] > 2 * ece[T.index(1.0)]
    assert np.all(np.asarray(c["test_acc"]) > 0.8)
    d = c["distill"]
    assert set(d) == {"hard labels", "soft T=1", "soft T=2", "soft T=4", "soft T=8"}
    assert d["hard labels"]["gain"] == 0.0
    assert all(0.5 < v["acc"] <= 1.0 for v in d.values())
    assert c["best_distill_gain"] == pytest.approx(max(v["gain"] for k, v in d.items()
                                                       if k != "hard labels"))


def test_temperature_ece():
    mod = _load("temperature")
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    y = np.array([0, 1, 0])
    # bins: 0.6 (wrong) -> |0 - 0.6|, 0.8 (right) -> |1 - 0.8|, 0.9 (right) -> |1 - 0.9|
    assert mod.ece(p, y) == pytest.approx((0.6 + 0.2 + 0.1) / 3)


def test_width_mup_sweep(run):
    s, _ = run("width_mup")
    c = s["claims"]
    widths, lrs = c["widths"], c["lrs"]
    assert all(lr in lrs for lr in c["sp_best_lr"] + c["mup_best_lr"])
    assert all(math.isfinite(v) and v < math.log(10) for v in c["sp_best_loss"] + c["mup_best_loss"])
    # At the base width muP is the standard parametrisation: identical losses for every lr.
    i = widths.index(c["base_width"])
    sp_row, mup_row = np.asarray(c["sp_loss_grid"][i], float), np.asarray(c["mup_loss_grid"][i], float)
    ok = np.isfinite(sp_row) & np.isfinite(mup_row)
    assert ok.any()
    np.testing.assert_allclose(sp_row[ok], mup_row[ok], rtol=1e-3)


def test_regression_classification(run):
    s, _ = run("regression_classification")
    c = s["claims"]
    assert c["best_test_mse"] < c["least_squares_mse"]          # nonlinear beats linear
    assert c["test_mse"][0] > c["best_test_mse"]                 # width 2 is not the best
    assert c["digits_test_accuracy"] > 0.9
    assert c["digits_test_ce_bits"] < 0.5 < c["digits_chance_ce_bits"] == pytest.approx(math.log2(10))


def test_readme_rendering(tmp_path):
    mod = run_experiments
    out = tmp_path / "out" / "computation_graph"
    out.mkdir(parents=True)
    summary = {"name": "computation_graph", "quick": False, "headline": "q = 3", "wall_s": 1.0,
               "tables": [{"title": "", "columns": ["a", "b"], "rows": [["1", "2|3"]]}],
               "table": {"columns": ["a", "b"], "rows": [["1", "2|3"]]}, "figures": ["x.png"]}
    (out / "summary.json").write_text(json.dumps(summary))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:computation_graph -->\nold\n<!-- /results:computation_graph -->\nend\n")
    assert mod.update_readme(["computation_graph"], tmp_path / "out", readme) == ["computation_graph"]
    text = readme.read_text()
    assert "old" not in text and "**q = 3**" in text and "| 1 | 2\\|3 |" in text
    assert text.startswith("intro\n") and text.endswith("end\n")
