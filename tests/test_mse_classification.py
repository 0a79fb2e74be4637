"""MSE (and Huber) against one-hot targets on classification data (issue 15): the residual
losses compare the outputs with the one-hot of the integer labels, built inside the per-example
loss and its hand-derived gradient (the data keep their int labels); accuracy stays the metric
for classification data whatever the loss; ``--loss auto`` stays ce; the temperature has no
effect on mse. Library (``fit``, ``sweep``, ``--grad manual``) and CLI (train, predict,
sweep, gradcheck)."""
from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import assert_manual_matches_autodiff_f32
import jaxmlp as jm
from jaxmlp import registry
from jaxmlp.backprop import mlp_graph
from jaxmlp.cli import main
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.gradcheck import gradcheck

RESIDUAL = ("mse", "huber")


def test_mse_on_labels_equals_a_hand_computation():
    out = jnp.asarray([[0.5, -1.0, 2.0], [0.0, 0.25, 0.0]], jnp.float32)
    y = jnp.asarray([2, 0], jnp.int32)
    # one-hot (0, 0, 1): (0.25 + 1 + 1) / 3;  one-hot (1, 0, 0): (1 + 0.0625 + 0) / 3
    want = np.array([(0.25 + 1.0 + 1.0) / 3, (1.0 + 0.0625) / 3])
    for f in (registry.mse_per_example, jm.mse_per_example,
              lambda o, t: registry.LOSSES["mse"].per_example(o, t, 5.0)):
        np.testing.assert_allclose(f(out, y), want, rtol=1e-6)
    # the same as a float one-hot target, and the manual gradient 2 (o - onehot) / k * scale
    onehot = jnp.asarray([[0, 0, 1], [1, 0, 0]], jnp.float32)
    per, delta = registry.LOSSES["mse"].value_and_grad(out, y, 1.0, 0.5)
    np.testing.assert_allclose(per, want, rtol=1e-6)
    np.testing.assert_allclose(delta, (out - onehot) * (2.0 / 3) * 0.5, rtol=1e-6)
    # Huber: residuals 0.5, -1, 1 | -1, 0.25, 0: h = r^2/2 inside |r| <= 1
    want_h = np.array([(0.125 + 0.5 + 0.5) / 3, (0.5 + 0.03125 + 0.0) / 3])
    np.testing.assert_allclose(registry.huber_per_example(out, y), want_h, rtol=1e-6)


def test_temperature_has_no_effect_on_mse():
    rng = np.random.default_rng(0)
    out = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=6), jnp.int32)
    entry = registry.LOSSES["mse"]
    a, da = entry.value_and_grad(out, y, 1.0, 1 / 6)
    b, db = entry.value_and_grad(out, y, 3.0, 1 / 6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)


def _problem(rng, dtype, sizes=(4, 7, 5, 3), batch=10):
    params = [{"W": jnp.asarray(rng.normal(size=(i, o)) / np.sqrt(i), dtype),
               "b": jnp.asarray(0.3 * rng.normal(size=(o,)), dtype)}
              for i, o in zip(sizes[:-1], sizes[1:])]
    x = jnp.asarray(2.0 * rng.normal(size=(batch, sizes[0])), dtype)
    y = jnp.asarray(rng.integers(0, sizes[-1], size=batch), jnp.int32)
    return params, x, y


@pytest.mark.parametrize("loss", RESIDUAL)
@pytest.mark.parametrize("weighted", [False, True])
def test_manual_backward_on_labels_matches_jax_grad_float32(loss, weighted):
    rng = np.random.default_rng(1)
    params, x, y = _problem(rng, jnp.float32)
    w = jnp.asarray(rng.integers(0, 3, size=10), jnp.float32) if weighted else None
    kw = dict(activation="tanh", loss=loss, temperature=0.7, weights=w)
    assert_manual_matches_autodiff_f32(params, x, y, **kw)


@pytest.mark.parametrize("loss", RESIDUAL)
def test_manual_backward_on_labels_vs_finite_differences_float64(loss):
    with jax.enable_x64(True):
        params, x, y = _problem(np.random.default_rng(2), jnp.float64)
        rows = gradcheck(params, x, y, activation="sigmoid", loss=loss, n_fd=6)
    assert max(r["max_abs_manual_vs_autodiff"] for r in rows) < 1e-12
    assert max(r["max_abs_manual_vs_fd"] for r in rows) < 1e-8


def test_graph_engine_mse_on_labels():
    """The gate graph (SqErrGate) on int labels: jax.grad's gradients, no target gradient."""
    with jax.enable_x64(True):
        params, x, y = _problem(np.random.default_rng(3), jnp.float64)
        g = mlp_graph(params, x, y, activation="tanh", loss="mse")
        grads = g.backward(g["loss"])
        v_ref, ref = jm.loss_and_grad(params, x, y, activation="tanh", loss="mse")
        np.testing.assert_allclose(float(g["loss"].value), float(v_ref), rtol=1e-12)
        for i, layer in enumerate(ref, start=1):
            np.testing.assert_allclose(grads[f"W{i}"], layer["W"], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(grads[f"b{i}"], layer["b"], rtol=1e-10, atol=1e-12)
        assert "t" not in grads


def test_auto_stays_ce_and_metrics_stay_accuracy():
    assert registry.resolve_loss("auto", "classification") == "ce"
    out = jnp.asarray([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
    y = jnp.asarray([0, 1], jnp.int32)
    ev = jm.evaluate({"activation": "identity", "loss": "mse"},
                     [{"W": jnp.eye(3), "b": jnp.zeros(3)}], out, y)
    assert set(ev) == {"loss", "accuracy"} and float(ev["accuracy"]) == 0.5


@pytest.fixture(scope="module")
def iris():
    return jm.load_splits(DataConfig(dataset="iris"))


def test_fit_iris_mse_learns_autodiff_and_manual(iris):
    assert np.issubdtype(np.asarray(iris.y_train).dtype, np.integer)
    runs = {}
    for grad in ("autodiff", "manual"):
        train = TrainConfig(loss="mse", epochs=100, lr=0.05, momentum=0.9, batch_size=16,
                            grad=grad)
        _, runs[grad] = jm.fit(iris, model=ModelConfig(hidden=(16,)), train=train)
    h = runs["autodiff"]
    assert h["final"]["test_accuracy"] > 0.8 and h["final"]["val_accuracy"] > 0.8, h["final"]
    assert "test_mse" not in h["final"] and "val_accuracy" in h
    assert h["train_loss"][-1] < 0.2 * h["train_loss"][0]
    np.testing.assert_allclose(runs["manual"]["train_loss"], h["train_loss"], rtol=1e-4)
    assert runs["manual"]["final"]["test_accuracy"] == h["final"]["test_accuracy"]


def test_fit_iris_huber_learns(iris):
    _, h = jm.fit(iris, model=ModelConfig(hidden=(16,)),
                  train=TrainConfig(loss="huber", epochs=100, lr=0.1, momentum=0.9,
                                    batch_size=16, grad="manual"))
    assert h["final"]["test_accuracy"] > 0.8, h["final"]


def test_sweep_digits_mse_runs():
    splits = jm.load_splits(DataConfig(dataset="digits", n_samples=400))
    res = jm.sweep(splits, model=ModelConfig(hidden=(16,)),
                   train=TrainConfig(loss="mse", epochs=8, lr=0.2, momentum=0.9, batch_size=32),
                   grid={"width": [8, 16], "lr": [0.1, 0.3]})
    tl = res.histories["train_loss"]
    assert tl.shape == (4, 8) and np.all(tl[:, -1] < tl[:, 0]), tl
    acc = res.column("test_accuracy")
    assert np.all((acc >= 0) & (acc <= 1)) and acc.max() > 0.5, acc


def test_cli_train_predict_sweep_gradcheck_iris_mse(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "iris", "--loss", "mse", "--epochs", "30",
                 "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["loss"] == "mse"
    capsys.readouterr()
    assert main(["predict", "--run", str(run)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res) == {"loss", "accuracy", "n"} and res["n"] == 150
    assert 0.5 < res["accuracy"] <= 1.0 and 0 < res["loss"] < 0.25
    assert main(["gradcheck", "--dataset", "iris", "--loss", "mse"]) == 0
    assert "PASS" in capsys.readouterr().out
    sw = tmp_path / "sw"
    assert main(["sweep", "--dataset", "iris", "--loss", "huber", "--width", "4,8",
                 "--epochs", "3", "--out", str(sw), "--quiet"]) == 0
    rows = list(csv.DictReader(open(sw / "results.csv")))
    assert len(rows) == 2 and "test_accuracy" in rows[0]
