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


def test_temperature_trends(run):
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


#: experiments/README.md, study 4 (b): post-hoc scaling cuts the mean test ECE at least this much.
POSTHOC_ECE_FACTOR = 2.5


def test_temperature_posthoc_scaling(run):
    s, _ = run("temperature")
    c = s["claims"]
    assert c["posthoc_acc_unchanged"] is True          # argmax(z / T) = argmax(z), exactly
    assert c["posthoc_mean_ece_before"] >= POSTHOC_ECE_FACTOR * c["posthoc_mean_ece_after"]
    assert c["posthoc_nll_not_worse"] is True          # test NLL never worse by > 0.001
    # the models trained at low T are under-confident: their fitted T* is below 1
    assert all(v < 1.0 for k, v in c["posthoc_fitted_T"].items() if k.startswith("0.25/"))


#: experiments/README.md, study 7: the best soft-target arm on the small transfer set gains at
#: least this much test accuracy over hard labels, in every seed.
SMALL_TRANSFER_GAIN = 0.05
#: ... and with no 3s in the transfer set, it recognises at least this share of the test 3s.
LEFT_OUT_RECOGNISED = 0.5


def test_distillation_helps_where_theory_expects(run):
    s, _ = run("distillation")
    c = s["claims"]
    assert c["arms"][0] == "hard labels" and c["small_gain"][0] == 0.0
    gain = np.asarray(c["small_gain"])
    best = int(np.argmax(gain))
    assert best > 0 and gain[best] >= SMALL_TRANSFER_GAIN
    assert c["small_wins"][best] == c["seeds"]
    # hard labels without a single 3: the student never predicts one
    assert c["no3_left_out_acc"][0] == 0.0
    assert max(c["no3_left_out_acc"][1:]) >= LEFT_OUT_RECOGNISED
    assert c["teacher_left_out_acc"] > 0.9 and c["teacher_acc"] > 0.9
    assert all(0.5 < a <= 1.0 for k in ("small_acc", "no3_acc", "narrow_acc") for a in c[k])


def test_distillation_bias_shift_picks_the_best_validation_accuracy():
    mod = _load("distillation")
    z = np.array([[2.0, 0.0, 0.9], [0.0, 3.0, 2.5], [1.0, 0.0, 0.2]])
    y = np.array([0, 2, 2])
    # row 1 needs a shift above 0.5, row 2 above 0.8; row 0 breaks above 1.1: 1.0 gets all three
    assert mod.best_bias_shift(z, y, 2) == 1.0


#: experiments/README.md, study 5: best-lr spread over widths (octaves) and curve closeness.
MUP_SPREAD_MAX, SP_SPREAD_MIN = 0.5, 1.0
MUP_WIDEST_GAP_MAX, MUP_OVER_SP_GAP_MAX = 0.1, 0.25


def test_width_mup_sweep(run):
    s, _ = run("width_mup")
    c = s["claims"]
    widths, lrs = c["widths"], c["lrs"]
    assert all(lr in lrs for lr in c["sp_best_lr"] + c["mup_best_lr"])
    assert all(math.isfinite(v) and v < math.log(10) for v in c["sp_best_loss"] + c["mup_best_loss"])
    # At the base width muP is the standard parametrisation: the same losses for every lr that
    # trains (at the edge of divergence, loss >= 0.1 here, two programs' float rounding grows
    # chaotically and only the divergence itself is shared).
    i = widths.index(c["base_width"])
    sp_row, mup_row = np.asarray(c["sp_loss_grid"][i], float), np.asarray(c["mup_loss_grid"][i], float)
    np.testing.assert_array_equal(np.isfinite(sp_row), np.isfinite(mup_row))
    ok = np.isfinite(sp_row) & (sp_row < 0.1) & (mup_row < 0.1)
    assert ok.sum() >= len(lrs) - 2
    np.testing.assert_allclose(sp_row[ok], mup_row[ok], rtol=1e-3)
    # The README's claims: the optimum transfers under muP and moves under SP ...
    assert c["mup_spread_octaves"] <= MUP_SPREAD_MAX
    assert c["sp_spread_octaves"] >= SP_SPREAD_MIN
    assert c["sp_best_lr"][-1] < c["sp_best_lr"][0]          # SP's optimum moves down
    # ... and muP's loss-vs-lr curves converge as the width grows.
    assert c["mup_gaps"][-1] <= MUP_WIDEST_GAP_MAX
    assert c["mup_gaps"][-1] <= MUP_OVER_SP_GAP_MAX * c["sp_gaps"][-1]


def test_width_mup_curve_gaps():
    mod = _load("width_mup")
    L = np.array([[1.0, 2.0, np.nan], [np.e, 2.0, 3.0], [np.e, np.nan, np.nan]])
    gaps = mod.curve_gaps(L)
    assert gaps[0] == pytest.approx(0.5)          # |log 1 - log e| and 0, over the 2 shared lrs
    assert gaps[1] == pytest.approx(0.0)          # only the first lr is shared


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
    assert "(full run, 1.0 s, `python experiments/computation_graph.py`)" in text
    assert text.startswith("intro\n") and text.endswith("end\n")
