"""The compiled training loop: learning, exactness of batching, determinism, no recompiles."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmlp as jm
import jaxmlp.training as T
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return load_splits(DataConfig(dataset="digits"))


def _tree_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_tiny_run_loss_falls(digits):
    _, h = jm.fit(digits, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=5, lr=0.3))
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert list(h["epoch"]) == [1, 2, 3, 4, 5]
    assert np.all(np.diff(h["val_loss"]) < 0.05)


def test_digits_default_reaches_95_percent(digits):
    _, h = jm.fit(digits)  # the defaults `jaxmlp train` uses
    assert h["final"]["test_accuracy"] >= 0.95


def test_xor_solved_by_2_4_1_tanh():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    params, h = jm.fit((X, y), model=ModelConfig(hidden=(4,), activation="tanh"),
                       train=TrainConfig(epochs=1500, lr=0.2, batch_size=4, momentum=0.9, seed=1))
    pred = np.asarray(jm.forward(params, jnp.asarray(X), activation="tanh"))
    assert np.array_equal((pred > 0.5).astype(int), y.astype(int))
    assert h["final"]["train_loss"] < 0.01


def test_car_sensor_beats_linear_least_squares():
    s = load_splits(DataConfig(dataset="car_sensor"))
    _, h = jm.fit(s, model=ModelConfig(hidden=(64,)), train=TrainConfig(epochs=60, lr=0.05, momentum=0.9))
    A = np.c_[s.X_train, np.ones(len(s.X_train))]
    coef, *_ = np.linalg.lstsq(A, s.y_train, rcond=None)
    lin = np.mean((np.c_[s.X_test, np.ones(len(s.X_test))] @ coef - s.y_test) ** 2)
    assert h["final"]["test_mse"] < 0.5 * lin


def test_same_seed_bit_identical_different_seed_differs(digits):
    kw = dict(model=ModelConfig(hidden=(32,)), train=TrainConfig(epochs=3, seed=7))
    a, ha = jm.fit(digits, **kw)
    b, hb = jm.fit(digits, **kw)
    c, _ = jm.fit(digits, model=kw["model"], train=TrainConfig(epochs=3, seed=8))
    assert _tree_equal(a, b)
    assert np.array_equal(ha["train_loss"], hb["train_loss"])
    assert not _tree_equal(a, c)


def test_no_recompilation_across_runs_of_same_shapes(digits):
    model = ModelConfig(hidden=(24,))
    # two programs: without and with an L2 term (an L2 of 0 leaves the term out)
    jm.fit(digits, model=model, train=TrainConfig(epochs=2, lr=0.1, seed=0))
    jm.fit(digits, model=model, train=TrainConfig(epochs=2, lr=0.1, seed=0, l2=1e-4))
    before = jm.trace_count()
    for lr, seed, temp, l2, epochs in [(0.05, 1, 2.0, 0.0, 2), (0.3, 2, 0.5, 1e-3, 4), (0.01, 3, 1.0, 0.0, 1),
                                       (0.2, 4, 3.0, 0.5, 3)]:
        _, h = jm.fit(digits, model=model,
                      train=TrainConfig(epochs=epochs, lr=lr, seed=seed, temperature=temp, l2=l2))
        assert h["final"]["compile_s"] == 0.0
        assert h["final"]["epochs_run"] == epochs
    assert jm.trace_count() == before, "training recompiled for a run of the same shapes"


def test_short_runs_compile_quick_by_default_with_the_same_results(digits, monkeypatch):
    from jaxmlp.nn import elementwise_counts
    from jaxmlp.training import compile as training_compile
    model, train = ModelConfig(hidden=(20,)), TrainConfig(epochs=3, seed=5)
    full_p, full = jm.fit(digits, model=model, train=train, fast_compile=False)
    short_p, short = jm.fit(digits, model=model, train=train)
    assert not full["final"]["short_run_compile"] and short["final"]["short_run_compile"]
    # other XLA options reorder float32 arithmetic, nothing more
    np.testing.assert_allclose(short["train_loss"], full["train_loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(short_p), jax.tree.leaves(full_p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # the counts: layer outputs per training example and evaluation row, weights per step,
    # input features per training example
    n, n_eval = len(digits.X_train), len(digits.X_val) + len(digits.X_test)
    assert elementwise_counts([64, 20, 10], n, n_eval, 3, 30) == {
        "steps": 30, "outputs": 30 * (n + n_eval) * 3, "weights": (64 * 20 + 20 * 10) * 30,
        "inputs": 64 * n * 3}
    # the rule: estimated extra seconds against the compile saved
    c = training_compile
    assert c.quick_extra_s({"steps": 10.0, "inputs": 1e6}) == pytest.approx(
        10 * c.QUICK_COSTS_S["steps"] + 1e6 * c.QUICK_COSTS_S["inputs"])
    assert c.compiles_quick(elementwise_counts([64, 128, 10], 1257, 539, 50, 500))  # README job
    for kind, cost in c.QUICK_COSTS_S.items():  # any one kind of work can make a run long
        assert c.compiles_quick({kind: 0.9 * c.QUICK_SAVING_S / cost})
        assert not c.compiles_quick({kind: 1.1 * c.QUICK_SAVING_S / cost})
    monkeypatch.setattr(c, "QUICK_SAVING_S", 0.0)  # every run is long now
    _, long = jm.fit(digits, model=model, train=train)
    assert not long["final"]["short_run_compile"]
    assert np.array_equal(long["train_loss"], full["train_loss"])  # the same program as full's


def test_next_chunks_orders_are_drawn_while_a_chunk_runs_with_the_same_results(digits, monkeypatch):
    """The host draws chunk k+1's data orders after dispatching chunk k and before fetching its
    metrics (the device does not wait for the host between chunks); the run is bit-identical
    to one that draws every chunk's orders just before it."""
    import jaxmlp.training.fitting as fitting
    from jaxmlp.training.program import OrdersAhead
    kw = dict(model=ModelConfig(hidden=(8,)),
              train=TrainConfig(epochs=9, batch_size=512, checkpoint_every=2, seed=3))  # 2-epoch chunks
    events = []
    draw, fetch = fitting.chunk_orders, fitting.to_host
    monkeypatch.setattr(fitting, "chunk_orders",
                        lambda spec, seed, ep, end: events.append(("draw", int(ep[0]))) or draw(spec, seed, ep, end))
    monkeypatch.setattr(fitting, "to_host", lambda x: events.append(("fetch",)) or fetch(x))
    ahead_p, ahead_h = jm.fit(digits, **kw)
    # chunk k+1's draw comes before chunk k's fetch; the last fetch is the final metrics
    assert events == [("draw", 0), ("draw", 2), ("fetch",), ("draw", 4), ("fetch",), ("draw", 6),
                      ("fetch",), ("draw", 8), ("fetch",), ("fetch",), ("fetch",)]
    monkeypatch.setattr(OrdersAhead, "ahead", lambda self, ep: None)  # draw just before
    inline_p, inline_h = jm.fit(digits, **kw)
    assert _tree_equal(ahead_p, inline_p)
    assert np.array_equal(ahead_h["train_loss"], inline_h["train_loss"])


def test_matmul_precision_reaches_every_matmul_of_the_training_and_metrics_programs(digits):
    """``TrainConfig.matmul_precision`` sets the precision of every dot in the compiled
    programs (on GPU/TPU float32 matmuls otherwise run as TF32 / one bfloat16 pass); on this
    CPU every precision computes float32, so the runs agree bit for bit."""
    import re
    from jaxmlp.training.compile import _chunk_inputs, jit_chunk, split_metrics_jit
    runs = {}
    for p in ("high", "highest"):
        train = TrainConfig(epochs=2, matmul_precision=p)
        run = T.prepare(digits, ModelConfig(hidden=(8,)), train)
        assert run.spec.matmul_precision == p
        inputs = _chunk_inputs(run.spec, run.state, run.spec.chunk_epochs, 0, None)
        texts = [jit_chunk(run.spec).lower(run.state, run.hp, run.data, *inputs).as_text(),
                 split_metrics_jit(run.spec).lower(run.state["params"], run.hp, run.data).as_text()]
        for text in texts:
            dots = re.findall(r"stablehlo.dot_general.*", text)
            assert dots and all(f"precision = [{p.upper()}, {p.upper()}]" in d for d in dots), p
        runs[p] = jm.fit(digits, model=ModelConfig(hidden=(8,)), train=train)
    assert _tree_equal(runs["high"][0], runs["highest"][0])
    with pytest.raises(ConfigError, match="matmul_precision must be one of"):
        TrainConfig(matmul_precision="tf32")


def _reference_sgd(params, X, y, seed, epochs, B, lr, loss):
    """Plain eager SGD over the same data order: the semantics fit must reproduce."""
    n = len(X)
    for e in range(epochs):
        perm = T.data_order(seed, e, n)
        for start in range(0, n, B):
            idx = perm[start:start + B]  # last batch is partial: mean over its own examples
            _, g = jm.value_and_grad(params, jnp.asarray(X[idx]), jnp.asarray(y[idx]),
                                     activation="tanh", loss=loss)
            params = jax.tree.map(lambda p, gg: p - lr * gg, params, g)
    return params


@pytest.mark.parametrize("B", [1, 4, 7, 10])
def test_batches_including_partial_last_match_reference(B):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=10).astype(np.int32)
    train = TrainConfig(epochs=2, lr=0.1, batch_size=B, seed=5)
    p0 = jm.init_mlp(T.init_key(5), [3, 5, 3])
    got, h = jm.fit((X, y), model=ModelConfig(hidden=(5,)), train=train)
    ref = _reference_sgd(p0, X, y, 5, 2, B, 0.1, "ce")
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_drop_last_uses_whole_batches_only():
    X = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    y = (np.arange(10) % 2).astype(np.int32)
    _, h = jm.fit((X, y), model=ModelConfig(hidden=(4,)), train=TrainConfig(epochs=1, batch_size=4, drop_last=True))
    assert h["final"]["epochs_run"] == 1
    with pytest.raises(ConfigError):
        jm.fit((X, y), train=TrainConfig(batch_size=16, drop_last=True))


def test_early_stopping_restores_best_params(digits):
    params, h = jm.fit(digits, model=ModelConfig(hidden=(64,)),
                       train=TrainConfig(epochs=200, lr=0.5, patience=3, momentum=0.9))
    f = h["final"]
    assert f["stopped_early"] and f["epochs_run"] < 200
    assert f["val_loss"] == pytest.approx(np.min(h["val_loss"]), rel=1e-5)
    assert f["best_epoch"] == int(h["epoch"][np.argmin(h["val_loss"])])
    assert len(h["epoch"]) == f["epochs_run"]


@pytest.mark.parametrize("schedule", ["cosine", "step", "warmup_cosine"])
def test_schedules_shape_the_learning_rate(digits, schedule):
    tc = TrainConfig(epochs=6, lr=0.2, schedule=schedule, step_every=2, step_gamma=0.5, warmup_epochs=2)
    _, h = jm.fit(digits, model=ModelConfig(hidden=(8,)), train=tc)
    lr = h["lr"]  # lr of the last step of each epoch
    spe = T.make_spec(ModelConfig(hidden=(8,)), tc, task="classification",
                      n_train=len(digits.X_train), has_val=True, has_test=True).n_batches
    total = 6 * spe
    t = np.arange(1, 7) * spe - 1
    if schedule == "cosine":
        expect = 0.2 * 0.5 * (1 + np.cos(np.pi * t / total))
    elif schedule == "step":
        expect = 0.2 * 0.5 ** np.floor(t / (2 * spe))
    else:
        w = 2 * spe
        expect = np.where(t < w, 0.2 * (t + 1) / w, 0.2 * 0.5 * (1 + np.cos(np.pi * (t - w) / (total - w))))
    np.testing.assert_allclose(lr, expect, rtol=1e-5, atol=1e-7)


def test_optimizers_by_name(digits):
    for name in ("adam", "momentum", "nesterov", "rmsprop"):
        _, h = jm.fit(digits, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=2, lr=0.01, optimizer=name))
        assert h["train_loss"][-1] < h["train_loss"][0]
    with pytest.raises(ConfigError, match="unknown optimizer"):
        jm.fit(digits, train=TrainConfig(optimizer="nope"))


def test_momentum_matches_optax_reference():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 2)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    p = jm.init_mlp(T.init_key(0), [2, 3, 1])
    opt = optax.sgd(0.05, momentum=0.9, nesterov=True)
    s = opt.init(p)
    for _ in range(5):  # full batch, 5 epochs: order does not matter
        _, g = jm.value_and_grad(p, jnp.asarray(X), jnp.asarray(y), loss="mse")
        u, s = opt.update(g, s, p)
        p = optax.apply_updates(p, u)
    got, _ = jm.fit((X, y), model=ModelConfig(hidden=(3,)),
                    train=TrainConfig(epochs=5, lr=0.05, momentum=0.9, nesterov=True, batch_size=8))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_divergence_is_caught_inside_the_run():
    X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 10
    y = X[:, :1] ** 3
    params, h = jm.fit((X, y), model=ModelConfig(hidden=(16,), activation="relu"),
                       train=TrainConfig(epochs=50, lr=50.0, batch_size=16))
    f = h["final"]
    assert f["diverged"] and f["diverged_step"] >= 0
    assert f["epochs_run"] < 50
    assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(params))
    with pytest.raises(jm.DivergenceError, match="lower learning rate"):
        jm.fit((X, y), model=ModelConfig(hidden=(16,), activation="relu"),
               train=TrainConfig(epochs=50, lr=50.0, batch_size=16), raise_on_divergence=True)


def test_per_example_updates_batch_size_one():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 0, 0, 1], np.int32)  # AND
    params, h = jm.fit((X, y), model=ModelConfig(hidden=(4,)), train=TrainConfig(epochs=300, lr=0.1, batch_size=1))
    assert h["final"]["train_accuracy"] == 1.0


def test_ce_on_regression_data_is_rejected():
    X = np.ones((4, 2), np.float32)
    with pytest.raises(ConfigError, match="classification"):
        jm.fit((X, np.ones((4, 1), np.float32)), train=TrainConfig(loss="ce"))


def test_given_params_are_not_donated_and_training_starts_from_them(digits):
    p0 = jm.init_mlp(T.init_key(3), [64, 16, 10])
    W0 = np.asarray(p0[0]["W"]).copy()
    a, _ = jm.fit(digits, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=2, seed=3), params=p0)
    assert np.array_equal(np.asarray(p0[0]["W"]), W0)  # still readable, unchanged
    b, _ = jm.fit(digits, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=2, seed=3))
    # the default init of seed 3 is init_mlp(init_key(3), ...) (computed inside a jit: equal to
    # float32 round-off, not bit for bit)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation,loss,temperature", [("tanh", "auto", 1.0), ("relu", "auto", 2.0),
                                                         ("sigmoid", "mse", 1.0)])
def test_manual_backward_trains_like_autodiff(digits, activation, loss, temperature):
    """`grad="manual"` runs the same compiled loop with the hand-derived gradients: the loss
    curve matches autodiff to float32 round-off."""
    model = ModelConfig(hidden=(32, 16), activation=activation)
    data = digits
    if loss == "mse":  # regression targets: one-hot digits as (n, 10) floats
        data = (digits.X_train, np.eye(10, dtype=np.float32)[digits.y_train],
                digits.X_test, np.eye(10, dtype=np.float32)[digits.y_test])
    curves, params = {}, {}
    for grad in ("autodiff", "manual"):
        params[grad], h = jm.fit(data, model=model, train=TrainConfig(
            epochs=8, lr=0.1, temperature=temperature, loss=loss, grad=grad, seed=4))
        curves[grad] = h["train_loss"]
    np.testing.assert_allclose(curves["manual"], curves["autodiff"], rtol=2e-5, atol=1e-7)
    assert curves["manual"][-1] < curves["manual"][0]
    for a, b in zip(jax.tree.leaves(params["manual"]), jax.tree.leaves(params["autodiff"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_cli_train_with_manual_gradients(tmp_path, capsys):
    from jaxmlp.cli import main
    rc = main(["train", "--dataset", "iris", "--hidden", "8", "--epochs", "5", "--grad", "manual",
               "--quiet", "--out", str(tmp_path / "m")])
    assert rc == 0 and "test_accuracy=" in capsys.readouterr().out
    import json
    assert json.loads((tmp_path / "m" / "config.json").read_text())["train"]["grad"] == "manual"


def test_probability_targets_with_ce(digits):
    """With loss="ce", float (n, K) targets are probabilities: one-hot rows train exactly like
    integer labels, soft rows (e.g. a teacher's) train too, and malformed rows are rejected."""
    X, y, Xt, yt = digits.X_train, digits.y_train, digits.X_test, digits.y_test
    onehot = np.eye(10, dtype=np.float32)
    kw = dict(model=ModelConfig(hidden=(16,)))
    tc = TrainConfig(epochs=3, seed=1, loss="ce", temperature=2.0)
    _, h_int = jm.fit((X, y, Xt, yt), train=tc, **kw)
    _, h_soft = jm.fit((X, onehot[y], Xt, onehot[yt]), train=tc, **kw)
    np.testing.assert_allclose(h_soft["train_loss"], h_int["train_loss"], rtol=1e-6)
    assert h_soft["final"]["test_accuracy"] == pytest.approx(h_int["final"]["test_accuracy"])
    smooth = 0.9 * onehot[y] + 0.01  # label smoothing: rows still sum to 1
    _, h = jm.fit((X, smooth), train=tc, **kw)
    assert h["train_loss"][-1] < h["train_loss"][0]
    with pytest.raises(jm.DataError, match="probability targets"):
        jm.fit((X, 2 * onehot[y]), train=tc, **kw)
    _, h = jm.fit((X, onehot[y]), train=TrainConfig(epochs=1, loss="auto"), **kw)
    assert "train_mse" in h["final"]  # without loss="ce", float targets are regression


def test_per_step_gather_for_large_sets_gives_the_same_run(digits, monkeypatch):
    kw = dict(model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, seed=2))
    a, ha = jm.fit(digits, **kw)
    monkeypatch.setattr("jaxmlp.training.spec.GATHER_PER_STEP_ABOVE", 0)  # digits is large now
    assert T.make_spec(kw["model"], kw["train"], task="classification", n_train=10, has_val=False,
                       has_test=False, n_features=1).gather_per_step
    b, hb = jm.fit(digits, **kw)
    np.testing.assert_allclose(hb["train_loss"], ha["train_loss"], rtol=1e-6)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_guard_epoch_undoes_a_diverged_epoch_and_names_its_first_bad_step():
    from jaxmlp.training import guard_epoch
    start = {"params": [{"W": jnp.ones((2, 2)), "b": jnp.zeros(2)}], "opt_state": (jnp.zeros(2),),
             "step": jnp.asarray(40, jnp.int32), "diverged": jnp.asarray(False),
             "diverged_step": jnp.asarray(-1, jnp.int32)}
    after = dict(start, params=[{"W": jnp.full((2, 2), 3.0), "b": jnp.ones(2)}],
                 step=jnp.asarray(50, jnp.int32))
    losses = jnp.asarray([1.0, 0.9, 0.8, jnp.nan, jnp.nan, jnp.nan, jnp.nan, jnp.nan, jnp.nan, jnp.nan])
    # a clean epoch is kept as it is
    st, ok = guard_epoch(start, after, jnp.ones(10))
    assert bool(ok) and int(st["step"]) == 50 and float(st["params"][0]["W"][0, 0]) == 3.0
    assert not bool(st["diverged"]) and int(st["diverged_step"]) == -1
    # a non-finite loss: the start state comes back, the first bad step is named
    st, ok = guard_epoch(start, after, losses)
    assert not bool(ok) and bool(st["diverged"]) and int(st["diverged_step"]) == 43
    assert int(st["step"]) == 40 and float(st["params"][0]["W"][0, 0]) == 1.0
    # finite losses but the last update overflowed: the epoch's last step is named
    bad = dict(after, params=[{"W": jnp.full((2, 2), jnp.inf), "b": jnp.ones(2)}])
    st, ok = guard_epoch(start, bad, jnp.ones(10))
    assert not bool(ok) and int(st["diverged_step"]) == 49 and float(st["params"][0]["W"][0, 0]) == 1.0
    # so does a non-finite optimizer state
    st, ok = guard_epoch(start, dict(after, opt_state=(jnp.asarray([0.0, jnp.nan]),)), jnp.ones(10))
    assert not bool(ok) and bool(st["diverged"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_large_evaluations_run_in_blocks_with_the_same_numbers(task, monkeypatch):
    """Above ``EVAL_BLOCK_VALUES`` activations an evaluation runs in blocks of rows (the last
    block overlapping the one before, its repeated rows weighted out): the same loss and
    accuracy / MSE as one full-batch pass, to float32 round-off, also under a model vmap."""
    from jaxmlp.training import metrics
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(1003, 7)), jnp.float32)
    y = (jnp.asarray(rng.integers(0, 5, 1003), jnp.int32) if task == "classification"
         else jnp.asarray(rng.normal(size=(1003, 5)), jnp.float32))
    kw = {"loss": "ce" if task == "classification" else "mse", "activation": "tanh"}
    params = [jm.init_mlp(jax.random.PRNGKey(s), [7, 16, 5]) for s in range(3)]
    full = [jax.jit(lambda p: metrics.evaluate(kw, p, X, y))(p) for p in params]
    monkeypatch.setattr(metrics, "EVAL_BLOCK_VALUES", 16 * 100)  # 100-row blocks: 11 of them
    blocks = [jax.jit(lambda p: metrics.evaluate(kw, p, X, y))(p) for p in params]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *params)
    vmapped = jax.jit(jax.vmap(lambda p: metrics.evaluate(kw, p, X, y)))(stacked)
    for i, (f, b) in enumerate(zip(full, blocks)):
        assert set(f) == set(b) == {"loss", "accuracy" if task == "classification" else "mse"}
        for k in f:
            np.testing.assert_allclose(float(b[k]), float(f[k]), rtol=2e-6)
            np.testing.assert_allclose(float(vmapped[k][i]), float(f[k]), rtol=2e-6)
    bad = jax.tree.map(lambda a: a.at[0].set(jnp.nan) if a.ndim == 1 else a, params[0])
    assert np.isnan(float(jax.jit(lambda p: metrics.evaluate(kw, p, X, y))(bad)["loss"]))


def test_bfloat16_runs_train_like_float32_with_inputs_stored_in_bfloat16(digits):
    """``compute_dtype="bfloat16"``: inputs live on the device in bfloat16, every matmul and its
    derivative's products run in bfloat16 with float32 accumulation, and the loss curve stays
    within 1% of the float32 run's (30 epochs, digits 64-128-10)."""
    model = ModelConfig(hidden=(128,))
    run = T.prepare(digits, model, TrainConfig(epochs=30, compute_dtype="bfloat16"))
    assert run.data["X_train"].dtype == jnp.bfloat16 and run.data["X_test"].dtype == jnp.bfloat16
    _, f32 = jm.fit(digits, model=model, train=TrainConfig(epochs=30))
    _, b16 = jm.fit(digits, model=model, train=TrainConfig(epochs=30, compute_dtype="bfloat16"))
    np.testing.assert_allclose(b16["train_loss"], f32["train_loss"], rtol=1e-2)
    assert abs(b16["final"]["test_accuracy"] - f32["final"]["test_accuracy"]) <= 0.01
