"""The registry of activations and losses: importing it does not import JAX; every entry's
hand-derived derivative equals ``jax.grad`` (float32) and central finite differences (float64,
also on hypothesis-drawn inputs); the new entries (GELU, SiLU, Huber) train in ``fit``,
``sweep``, ``--grad manual`` and the CLI; a loss on the wrong task is a clear error. The
residual losses (mse, huber) also run on classification labels (their one-hot): see
``tests/test_mse_classification.py``."""
from __future__ import annotations

import subprocess
import sys

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_manual_matches_autodiff_f32
import jaxmlp as jm
from jaxmlp import registry
from jaxmlp.cli import main
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.gradcheck import gradcheck

ACTIVATIONS = registry.activation_names()
LOSSES = tuple(registry.LOSSES)
# every (loss, target kind) a loss applies to: "labels" (int classes) and/or "floats" (regression)
LOSS_TARGETS = tuple((name, "labels" if task == "classification" else "floats")
                     for name, entry in registry.LOSSES.items() for task in entry.tasks)


def _targets(name, rng, shape, dtype, kind=None):
    """Targets for loss ``name``: integer labels (``kind`` "labels", the default for a
    classification-only loss), else floats whose residuals lie on both sides of Huber's
    delta = 1."""
    kind = kind or ("floats" if registry.LOSSES[name].residual else "labels")
    if kind == "labels":
        return jnp.asarray(rng.integers(0, shape[-1], size=shape[:-1]), jnp.int32)
    return jnp.asarray(2.0 * rng.normal(size=shape), dtype)


def _kept(act, s):
    """What the manual backward keeps for ``act``: the output or the pre-activation."""
    return act.forward(s) if act.grad_from == "output" else s


# ---------------------------------------------------------------------------------------------
# the registry itself
# ---------------------------------------------------------------------------------------------

def test_import_does_not_load_jax():
    code = ("import sys, jaxmlp.registry, jaxmlp.config; "
            "assert 'jax' not in sys.modules, sorted(m for m in sys.modules if 'jax.' in m); "
            "print(','.join(jaxmlp.registry.activation_names()), "
            "','.join(jaxmlp.registry.loss_names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tanh,relu,sigmoid,identity,gelu,silu", "auto,ce,mse,huber"]


def test_names_reach_config_nn_and_backprop():
    from jaxmlp import backprop, nn
    assert set(nn.ACTIVATIONS) == set(backprop.GATES_BY_ACTIVATION) == set(ACTIVATIONS)
    assert ModelConfig(activation="gelu").activation == "gelu"
    assert TrainConfig(loss="huber").loss == "huber"
    with pytest.raises(ConfigError):
        ModelConfig(activation="swish")
    with pytest.raises(ConfigError):
        TrainConfig(loss="hinge")
    with pytest.raises(ConfigError, match="unknown activation"):
        registry.activation("elu")
    with pytest.raises(ConfigError, match="unknown loss"):
        registry.loss("auto")  # "auto" is resolved by task, never looked up


def test_resolve_loss_by_task():
    assert registry.resolve_loss("auto", "classification") == "ce"
    assert registry.resolve_loss("auto", "regression") == "mse"
    assert registry.resolve_loss("huber", "regression") == "huber"
    # the residual losses apply to both tasks (classification: against the labels' one-hot)
    assert registry.resolve_loss("huber", "classification") == "huber"
    assert registry.resolve_loss("mse", "classification") == "mse"
    assert registry.LOSSES["mse"].tasks == registry.LOSSES["huber"].tasks == registry.TASKS
    with pytest.raises(ConfigError, match=r"ce \(cross-entropy\) is a classification loss"):
        registry.resolve_loss("ce", "regression")


@pytest.mark.parametrize("name,ref", [
    ("gelu", lambda s: 0.5 * s * (1 + np.vectorize(__import__("math").erf)(s / np.sqrt(2)))),
    ("silu", lambda s: s / (1 + np.exp(-s))),
])
def test_new_activation_values(name, ref):
    s = np.linspace(-6, 6, 25)
    with jax.enable_x64(True):
        got = jm.forward([{"W": jnp.eye(25), "b": jnp.zeros(25)}] * 2, jnp.asarray(s[None]),
                         activation=name)
    np.testing.assert_allclose(np.asarray(got)[0], ref(s), rtol=1e-12, atol=1e-15)


def test_huber_values():
    o = jnp.array([[0.0, 0.5, -3.0], [2.0, 1.0, 0.0]])
    t = jnp.zeros((2, 3))
    # h(0) = 0, h(0.5) = 0.125, h(-3) = 3 - 0.5; h(2) = 1.5, h(1) = 0.5 (both branches agree)
    np.testing.assert_allclose(registry.huber_per_example(o, t), [2.625 / 3, 2.0 / 3], rtol=1e-6)
    np.testing.assert_allclose(jm.losses.loss_per_example("huber", o, t), [2.625 / 3, 2.0 / 3],
                               rtol=1e-6)


@pytest.mark.parametrize("name,scheme", [("gelu", "he"), ("silu", "he"), ("tanh", "glorot"),
                                         ("identity", "lecun")])
def test_default_init_from_registry(name, scheme):
    assert jm.nn.resolve_init("auto", name) == scheme
    W = jm.init_mlp(jax.random.PRNGKey(1), [400, 300, 2], activation=name)[0]["W"]
    var = {"he": 2 / 400, "glorot": 2 / 700, "lecun": 1 / 400}[scheme]
    assert float(jnp.var(W)) == pytest.approx(var, rel=0.05)


# ---------------------------------------------------------------------------------------------
# derivatives: hand-derived vs jax.grad (float32) vs finite differences (float64)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_jax_grad_float32(name):
    act = registry.ACTIVATIONS[name]
    s = jnp.asarray(np.random.default_rng(0).normal(scale=3.0, size=(64, 8)), jnp.float32)
    s = jnp.where(jnp.abs(s) < 1e-3, 0.5, s)  # off ReLU's kink
    g = jnp.asarray(np.random.default_rng(1).normal(size=(64, 8)), jnp.float32)
    want = jax.vmap(jax.vmap(jax.grad(act.forward)))(s) * g
    got = g if act.backward is None else act.backward(g, _kept(act, s))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("name,kind", LOSS_TARGETS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_gradient_matches_jax_grad_float32(name, kind, weighted):
    entry, rng = registry.LOSSES[name], np.random.default_rng(2)
    out = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    y = _targets(name, rng, (16, 5), jnp.float32, kind)
    scale = (jnp.asarray(rng.uniform(0, 1, size=(16, 1)), jnp.float32) if weighted
             else 1.0 / 16)
    per, delta = entry.value_and_grad(out, y, 0.7, scale)

    def total(o):
        return jnp.sum(entry.per_example(o, y, 0.7) * jnp.reshape(scale, (-1,)))
    np.testing.assert_allclose(per, entry.per_example(out, y, 0.7), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(delta, jax.grad(total)(out), rtol=1e-5, atol=1e-7)


def _central(f, x, eps):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "identity"])
def test_activation_derivative_vs_finite_differences_float64(name):
    act = registry.ACTIVATIONS[name]
    with jax.enable_x64(True):
        s = jnp.linspace(-5.0, 5.0, 41) + 0.013  # off ReLU's kink
        fd = _central(act.forward, s, 1e-6)
        np.testing.assert_allclose(act.derivative(_kept(act, s)), fd, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name,kind", LOSS_TARGETS)
def test_loss_gradient_vs_finite_differences_float64(name, kind):
    entry, rng = registry.LOSSES[name], np.random.default_rng(3)
    with jax.enable_x64(True):
        out = jnp.asarray(rng.normal(size=(4, 3)))
        y = _targets(name, rng, (4, 3), jnp.float64, kind)
        _, delta = entry.value_and_grad(out, y, 1.3, 0.25)
        f = lambda o: float(jnp.sum(entry.per_example(o, y, 1.3)) * 0.25)  # noqa: E731
        for idx in np.ndindex(4, 3):
            fd = (f(out.at[idx].add(1e-6)) - f(out.at[idx].add(-1e-6))) / 2e-6
            assert float(delta[idx]) == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss,kind", LOSS_TARGETS)
def test_mlp_backward_matches_jax_grad_and_gradcheck(activation, loss, kind):
    """Every (activation, loss) pair through the layer-wise backward: float32 vs jax.grad, and
    gradcheck's float64 finite differences."""
    rng = np.random.default_rng(4)
    sizes = (3, 6, 5, 4)

    def problem(dtype):
        params = [{"W": jnp.asarray(rng.normal(size=(i, o)) / np.sqrt(i), dtype),
                   "b": jnp.asarray(0.3 * rng.normal(size=(o,)), dtype)}
                  for i, o in zip(sizes[:-1], sizes[1:])]
        x = jnp.asarray(rng.normal(size=(8, 3)), dtype)
        return params, x, _targets(loss, rng, (8, 4), dtype, kind)
    kw = dict(activation=activation, loss=loss, temperature=0.9)
    params, x, y = problem(jnp.float32)
    assert_manual_matches_autodiff_f32(params, x, y, **kw)
    with jax.enable_x64(True):
        params, x, y = problem(jnp.float64)
        rows = gradcheck(params, x, y, n_fd=4, **kw)
    assert len(rows) == 6
    assert max(r["max_abs_manual_vs_autodiff"] for r in rows) < 1e-12
    # relu: a finite difference may straddle a kink; the others are smooth
    assert max(r["max_abs_manual_vs_fd"] for r in rows) < (1e-6 if activation == "relu" else 1e-8)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from([n for n in ACTIVATIONS if n != "identity"]),
       s=hnp.arrays(np.float64, st.integers(1, 16), elements=st.floats(-8, 8)))
def test_activation_derivative_property(name, s):
    """phi'(s) from the kept value equals a central difference of the forward, anywhere the
    forward is smooth (more than eps away from ReLU's kink)."""
    act = registry.ACTIVATIONS[name]
    s = np.where(np.abs(s) < 1e-4, 0.5, s) if name == "relu" else s
    with jax.enable_x64(True):
        s = jnp.asarray(s)
        fd = _central(act.forward, s, 1e-6)
        np.testing.assert_allclose(act.derivative(_kept(act, s)), fd, rtol=1e-7, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from([n for n in LOSSES if registry.LOSSES[n].residual]),
       r=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)),
                    elements=st.floats(-5, 5).filter(lambda v: abs(abs(v) - 1.0) > 1e-4)))
def test_regression_loss_gradient_property(name, r):
    """Regression losses depend on the residual r = o - t: the manual dl/do equals a central
    difference in r for every entry (away from Huber's switch at |r| = delta)."""
    entry = registry.LOSSES[name]
    with jax.enable_x64(True):
        t = jnp.zeros(r.shape)
        _, delta = entry.value_and_grad(jnp.asarray(r), t, 1.0, 1.0)
        for idx in np.ndindex(*r.shape):
            e = np.zeros(r.shape)
            e[idx] = 1e-6
            # the example's own loss (the others cancel exactly); the difference of two float64
            # values near |up| loses up to ~2 ulp(|up|) / 2e-6 to rounding
            up = float(entry.per_example(jnp.asarray(r + e), t)[idx[0]])
            down = float(entry.per_example(jnp.asarray(r - e), t)[idx[0]])
            rounding = 4 * np.finfo(np.float64).eps * max(abs(up), abs(down)) / 2e-6
            assert float(delta[idx]) == pytest.approx((up - down) / 2e-6, rel=1e-6,
                                                      abs=rounding + 1e-12)


# ---------------------------------------------------------------------------------------------
# end to end: fit, sweep, manual gradients, CLI, task mismatch
# ---------------------------------------------------------------------------------------------

def _blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    X = (rng.normal(size=(n, 4)) + 2.0 * np.eye(3, 4)[y]).astype(np.float32)
    return X[:160], y[:160], X[160:200], y[160:200], X[200:], y[200:]


def _square(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32)
    y = np.c_[X ** 2 - 1.0, 2.0 * X].astype(np.float32)  # residuals beyond delta = 1 at first
    return X[:160], y[:160], X[160:200], y[160:200], X[200:], y[200:]


@pytest.mark.parametrize("activation,loss,data", [
    ("gelu", "ce", _blobs), ("silu", "ce", _blobs), ("gelu", "huber", _square),
    ("silu", "huber", _square),
])
def test_fit_learns_with_new_entries_autodiff_and_manual(activation, loss, data):
    model = ModelConfig(hidden=(16,), activation=activation)
    runs = {}
    for grad in ("autodiff", "manual"):
        train = TrainConfig(loss=loss, epochs=8, lr=0.05, momentum=0.9, batch_size=32, grad=grad)
        _, runs[grad] = jm.fit(data(), model=model, train=train)
    h = runs["autodiff"]
    assert h["train_loss"][-1] < 0.8 * h["train_loss"][0], h["train_loss"]
    np.testing.assert_allclose(runs["manual"]["train_loss"], h["train_loss"], rtol=1e-4)
    key = "test_accuracy" if loss == "ce" else "test_mse"
    assert key in h["final"]


def test_sweep_learns_with_new_entries():
    res = jm.sweep(_square(), model=ModelConfig(hidden=(8,), activation="silu"),
                   train=TrainConfig(loss="huber", epochs=6, lr=0.05, momentum=0.9,
                                     batch_size=32),
                   grid={"width": [4, 8], "lr": [0.02, 0.05]})
    tl = res.histories["train_loss"]
    assert tl.shape == (4, 6) and np.all(tl[:, -1] < 0.8 * tl[:, 0])
    res = jm.sweep(_blobs(), model=ModelConfig(hidden=(8,), activation="gelu"),
                   train=TrainConfig(epochs=6, lr=0.1, momentum=0.9, batch_size=32),
                   grid={"width": [4, 8]})
    tl = res.histories["train_loss"]
    assert np.all(tl[:, -1] < 0.6 * tl[:, 0]), tl


def test_ce_on_regression_is_a_config_error():
    # one target column (a float (n, K >= 2) y with ce would be probability targets)
    data = [a[:, :1] if i % 2 else a for i, a in enumerate(_square())]
    with pytest.raises(ConfigError, match="classification loss"):
        jm.fit(data, model=ModelConfig(hidden=(4,)), train=TrainConfig(loss="ce", epochs=1))


def test_cli_train_silu_and_ce_on_regression_error(tmp_path, capsys):
    rc = main(["train", "--activation", "silu", "--epochs", "2", "--hidden", "16",
               "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0
    cfg = (tmp_path / "run" / "config.json").read_text()
    assert '"activation": "silu"' in cfg
    capsys.readouterr()
    rc = main(["train", "--dataset", "diabetes", "--loss", "ce", "--epochs", "1",
               "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "ce (cross-entropy)" in err
    assert not (tmp_path / "bad" / "checkpoint.npz").exists()


def test_every_activation_default_init_is_a_registered_scheme():
    from jaxmlp import config, nn, registry
    assert set(registry.init_names()) == {"auto", *registry.INIT_VARIANCE}
    for a in registry.ACTIVATIONS.values():
        assert a.init in registry.INIT_VARIANCE, a.name
        assert nn.resolve_init("auto", a.name) == a.init
    assert config.choices_of(next(f for f in config.dataclasses.fields(config.ModelConfig)
                                  if f.name == "init")) == registry.init_names()


def test_readme_lists_exactly_the_registered_names():
    """The README's flag lists are checked against the registry (the one definition)."""
    import re
    from pathlib import Path
    from jaxmlp import registry
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = lambda flag: set(re.search(rf"`--{flag} ([a-z|]+)`", text).group(1).split("|"))
    assert listed("activation") == set(registry.activation_names())
    assert listed("loss") == set(registry.loss_names())
    assert listed("init") == set(registry.init_names())
