"""Sweeps: one compile per program, exact padding, per-model early stopping, equivalence to fit,
sharding over devices."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.sweeps import expand_grid, sweep, width_buckets
from jaxmlp.errors import ConfigError
from helpers import FORCED_8, cpu_env, fit_like_sweep, require_one_cpu_device
from helpers import max_abs_diff as _max_diff


def test_grid_expansion_and_buckets():
    rows = expand_grid({"width": [8, 16], "lr": [0.1, 0.2]}, seeds=3, model=ModelConfig(hidden=(4,)))
    assert len(rows) == 12
    assert {(r["width"], r["lr"], r["seed"]) for r in rows} == {
        (w, lr, s) for w in (8, 16) for lr in (0.1, 0.2) for s in range(3)}
    assert width_buckets([16, 32, 64, 128], 1.0) == [[16], [32], [64], [128]]
    assert width_buckets([16, 32, 64, 128], 4.0) == [[16, 32, 64], [128]]
    assert width_buckets([16, 32, 64, 128], float("inf")) == [[16, 32, 64, 128]]
    with pytest.raises(ConfigError, match="unknown sweep axis"):
        expand_grid({"dept": [1]})
    with pytest.raises(ConfigError, match="learning rate"):
        expand_grid({"lr": [0.1, -1.0]})


def test_every_model_equals_fit_alone(small):
    model = ModelConfig(hidden=(12,))
    train = TrainConfig(epochs=4, batch_size=32)
    grid = {"width": [6, 12], "lr": [0.05, 0.2], "temperature": [0.5, 2.0], "l2": [0.0, 1e-3],
            "momentum": [0.0, 0.9]}
    res = sweep(small, model=model, train=train, grid=grid, seeds=[3], max_pad_ratio=4,
                packing="pad")
    assert res.info["strategy"] == "pad" and len(res.info["programs"]) == 1
    assert len(res.rows) == 32
    for i in range(0, 32, 3):  # a spread of models: every axis value appears
        r = res.rows[i]
        tc = TrainConfig(epochs=4, batch_size=32, lr=r["lr"], temperature=r["temperature"], l2=r["l2"],
                         momentum=r["momentum"], seed=r["seed"])
        p, h = fit_like_sweep(small, model=ModelConfig(hidden=(r["width"],)), train=tc)
        assert _max_diff(p, res.params(i)) < 2e-5
        np.testing.assert_allclose(res.histories["train_loss"][i], h["train_loss"], rtol=1e-5, atol=1e-6)
        assert r["test_accuracy"] == pytest.approx(h["final"]["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_padded_narrow_model_is_exactly_the_narrow_model(small, activation):
    model = ModelConfig(hidden=(48, 48), activation=activation)
    train = TrainConfig(epochs=5, batch_size=64, lr=0.1, momentum=0.5)
    res = sweep(small, model=model, train=train, grid={"width": [16, 48]}, seeds=[0],
                max_pad_ratio=10, packing="pad")
    i16 = next(i for i, r in enumerate(res.rows) if r["width"] == 16)
    p, h = fit_like_sweep(small, model=ModelConfig(hidden=(16, 16), activation=activation), train=train)
    assert _max_diff(p, res.params(i16)) < 1e-5
    np.testing.assert_allclose(res.histories["train_loss"][i16], h["train_loss"], rtol=1e-5)
    padded = res.params(i16, padded=True)
    assert padded[0]["W"].shape == (64, 48)
    assert np.all(np.asarray(padded[0]["W"])[:, 16:] == 0) and np.all(np.asarray(padded[0]["b"])[16:] == 0)
    assert np.all(np.asarray(padded[1]["W"])[16:, :] == 0) and np.all(np.asarray(padded[1]["W"])[:, 16:] == 0)
    assert np.all(np.asarray(padded[2]["W"])[16:, :] == 0)


def test_group_and_pad_strategies_agree(small):
    kw = dict(model=ModelConfig(hidden=(8,)), train=TrainConfig(epochs=3, batch_size=50),
              grid={"width": [4, 8, 32]}, seeds=2)
    pad = sweep(small, max_pad_ratio=100, packing="pad", **kw)
    group = sweep(small, max_pad_ratio=1, packing="pad", **kw)
    assert pad.info["strategy"] == "pad" and group.info["strategy"] == "group"
    assert len(group.info["programs"]) == 3
    np.testing.assert_allclose(pad.column("test_loss"), group.column("test_loss"), rtol=1e-5)


def test_short_runs_compile_fast_with_the_same_results(small, monkeypatch):
    from jaxmlp.nn import training_flops_estimate
    from jaxmlp.training import compile as training_compile
    kw = dict(model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, batch_size=64),
              grid={"width": [8, 16], "lr": [0.1, 0.3]}, seeds=2)
    auto = sweep(small, **kw)
    slow = sweep(small, fast_compile=False, **kw)
    assert [p["short_run"] for p in auto.info["programs"]] == [True]
    assert [p["short_run"] for p in slow.info["programs"]] == [False]
    np.testing.assert_allclose(auto.column("train_loss"), slow.column("train_loss"), rtol=1e-6)
    assert _max_diff(auto.params(3), slow.params(3)) < 1e-6
    # the estimate: 6 FLOPs per weight per example per epoch, every (padded) model slot
    weights = 64 * 16 + 16 * 10
    assert (training_flops_estimate([64, 16, 10], len(small.X_train), 3, 8)
            == 6.0 * weights * len(small.X_train) * 3 * 8)
    monkeypatch.setattr(training_compile, "SHORT_RUN_FLOPS", 1.0)  # everything is long now
    assert [p["short_run"] for p in sweep(small, **kw).info["programs"]] == [False]
    assert training_compile.compiles_short(0.5) and not training_compile.compiles_short(2.0)


def test_short_run_rule_one_wide_hidden_layer():
    """One hidden layer of >= WIDE_FIRST_WIDTH units has the smaller bound; depth or a
    narrower layer the larger; a program is judged by its widest-first group."""
    from jaxmlp.training import compile as training_compile
    wide, cut = training_compile.WIDE_FIRST_WIDTH, training_compile.SHORT_RUN_FLOPS_WIDE_FIRST
    big = training_compile.SHORT_RUN_FLOPS
    f = 2 * cut
    assert cut < f < big
    assert not training_compile.compiles_short(f, [[64, wide, 10]])
    assert training_compile.compiles_short(cut, [[64, wide, 10]])
    assert training_compile.compiles_short(f, [[64, wide - 1, 10]])
    assert training_compile.compiles_short(f, [[64, wide, wide, 10]])
    assert training_compile.compiles_short(f)                       # no sizes: the FLOPs bound
    assert not training_compile.compiles_short(f, [[64, 16, 10], [64, wide, 10]])
    assert not training_compile.compiles_short(2 * big, [[64, wide, wide, 10]])


def _streams_sweep(small, cores, monkeypatch, **extra):
    """A 4-seed sweep with ``os.cpu_count()`` set to ``cores`` (the streams it may use)."""
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    kw = dict(model=ModelConfig(hidden=(16,), activation="relu"),
              grid={"width": [8, 16], "lr": [0.05, 3.0, 1e6]}, seeds=4,
              train=TrainConfig(epochs=8, batch_size=64, patience=2))
    kw.update(extra)
    return sweep(small, **kw)


def test_streams_split_the_models_with_the_same_results(small, monkeypatch):
    require_one_cpu_device()
    one = _streams_sweep(small, 1, monkeypatch)
    two = _streams_sweep(small, 2, monkeypatch)
    assert [p["streams"] for p in one.info["programs"]] == [1]
    assert [p["streams"] for p in two.info["programs"]] == [2]
    assert [p["streams"] for p in _streams_sweep(small, 3, monkeypatch).info["programs"]] == [2]
    assert [p["streams"] for p in _streams_sweep(small, 64, monkeypatch).info["programs"]] == [2]
    for key in ("train_loss", "test_accuracy", "epochs_run", "diverged", "stopped_early"):
        np.testing.assert_allclose(np.asarray(one.column(key), float),
                                   np.asarray(two.column(key), float), rtol=1e-6)
    assert any(two.column("diverged")) and any(two.column("stopped_early"))
    for i in range(len(two.rows)):
        assert _max_diff(one.params(i), two.params(i)) < 1e-6
    np.testing.assert_allclose(one.histories["val_loss"], two.histories["val_loss"], rtol=1e-6)
    # a model of the second half equals its stand-alone fit
    i = next(i for i, r in enumerate(two.rows) if r["seed"] == 3 and r["lr"] == 0.05)
    r = two.rows[i]
    p, h = fit_like_sweep(small, model=ModelConfig(hidden=(r["width"],), activation="relu"),
                  train=TrainConfig(epochs=8, batch_size=64, patience=2, lr=0.05, seed=3))
    assert _max_diff(p, two.params(i)) < 2e-5


def test_states_reach_the_host_only_when_the_callback_wants_them(small, monkeypatch):
    """``on_chunk.wants_state`` (the sweep folder's saver: a checkpoint due) decides whether a
    chunk copies every model's state to the host; the sweep's results do not change."""
    import jaxmlp.sweeps.api as sweep_api
    copies, seen = [], []
    real = sweep_api.to_host
    monkeypatch.setattr(sweep_api, "to_host", lambda t: copies.append(1) or real(t))

    def on_chunk(snap):
        seen.append((snap["programs"][-1]["epoch"], "state" in snap["programs"][-1]))
    on_chunk.wants_state = lambda snap: snap["programs"][-1]["epoch"] == 4
    kw = dict(train=TrainConfig(epochs=6, batch_size=64, checkpoint_every=2),
              grid={"width": [8, 16], "lr": [0.05, 0.2]}, packing="pad", fast_compile=True)
    lazy = sweep(small, on_chunk=on_chunk, **kw)
    assert seen == [(2, False), (4, True), (6, False)]
    lazy_copies = len(copies)
    copies.clear()
    every = sweep(small, on_chunk=lambda snap: None, **kw)  # no wants_state: every chunk
    assert len(copies) - lazy_copies == 2  # the chunks ending at epochs 2 and 6
    # a finished program's state is kept on the host, not on the devices
    assert all(isinstance(a, np.ndarray) for a in jax.tree.leaves(lazy.programs[0][1]))
    np.testing.assert_array_equal(lazy.histories["train_loss"], every.histories["train_loss"])


def test_data_orders_per_chunk_are_bounded_in_memory(small, monkeypatch):
    """A program holds one data order per epoch and group of models sharing one (here the 4
    seeds): its chunks shrink so that a chunk's orders stay within ``ORDERS_MAX_BYTES``;
    results do not depend on the chunking."""
    from jaxmlp.training import spec as training_spec
    kw = dict(train=TrainConfig(epochs=6, batch_size=64),
              grid={"seed": [0, 1, 2, 3], "lr": [0.05, 0.2]}, packing="pad")
    free = sweep(small, **kw)
    spec = free.programs[0][0]
    orders = len(free.rows) // free.info["programs"][0]["models_per_order"]
    assert orders == 4
    per_epoch = 4 * spec.n_batches * spec.batch_size * orders  # int32 row indices
    monkeypatch.setattr(training_spec, "ORDERS_MAX_BYTES", 2 * per_epoch)
    bounded = sweep(small, **kw)
    assert spec.chunk_epochs > 2 and bounded.programs[0][0].chunk_epochs == 2
    np.testing.assert_array_equal(free.histories["train_loss"], bounded.histories["train_loss"])
    for i in range(len(free.rows)):
        assert _max_diff(free.params(i), bounded.params(i)) == 0.0


def test_streams_resume_from_a_mid_run_snapshot(small, monkeypatch):
    require_one_cpu_device()
    snaps = []
    keep = lambda snap: snaps.append(jax.tree.map(np.copy, snap))
    extra = dict(train=TrainConfig(epochs=6, batch_size=64, checkpoint_every=2),
                 grid={"width": [8, 16], "lr": [0.05, 0.2]})
    full = _streams_sweep(small, 2, monkeypatch, on_chunk=keep, **extra)
    assert full.info["programs"][0]["streams"] == 2 and len(snaps) == 3
    first = snaps[0]["programs"][0]
    assert first["epoch"] == 2
    resume = {"programs": [dict(first, state=jax.tree.leaves(first["state"]))]}
    again = _streams_sweep(small, 2, monkeypatch, resume=resume, **extra)
    np.testing.assert_array_equal(full.histories["train_loss"], again.histories["train_loss"])
    for i in range(len(full.rows)):
        assert _max_diff(full.params(i), again.params(i)) == 0.0


def test_one_compile_per_program_shape(small):
    kw = dict(model=ModelConfig(hidden=(10,)), train=TrainConfig(epochs=2, batch_size=64))
    sweep(small, grid={"lr": [0.1, 0.2], "temperature": [1.0, 2.0]}, seeds=2, **kw)
    before = jm.trace_count()
    res = sweep(small, grid={"lr": [0.3, 0.01], "temperature": [0.5, 4.0]}, seeds=[5, 6], **kw)
    assert jm.trace_count() == before
    assert res.info["compile_s"] == 0.0


def test_per_model_early_stopping_and_divergence(small):
    train = TrainConfig(epochs=40, batch_size=64, patience=2)
    res = sweep(small, model=ModelConfig(hidden=(16,), activation="relu"), train=train,
                grid={"lr": [0.002, 3.0, 1e6]}, seeds=[0])
    slow, fast, boom = res.rows
    assert boom["diverged"] and not slow["diverged"] and not fast["diverged"]
    assert fast["stopped_early"] and fast["epochs_run"] < slow["epochs_run"]
    h = res.histories["train_loss"]
    assert np.all(np.isnan(h[1, fast["epochs_run"]:])) and np.all(np.isfinite(h[1, :fast["epochs_run"]]))
    assert np.isfinite(h[0]).sum() == slow["epochs_run"]
    assert all(np.all(np.isfinite(np.asarray(l))) for l in jax.tree.leaves(res.params(2)))


SHARD_SCRIPT = r"""
import json, sys, numpy as np, jax
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.sweeps import sweep
s = load_splits(DataConfig(dataset="digits", n_samples=300))
res = sweep(s, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, batch_size=32),
            grid={"width": [8, 16], "lr": [0.05, 0.1, 0.2]}, seeds=2, n_devices=int(sys.argv[1]))
print(json.dumps({"devices": res.info["programs"][0]["devices"], "n": len(jax.devices()),
                  "loss": [r["test_loss"] for r in res.rows]}))
"""


def test_model_axis_sharded_over_8_cpu_devices_matches_one_device():
    env = cpu_env(XLA_FLAGS=FORCED_8)
    out = {}
    for n in (1, 8):
        p = subprocess.run([sys.executable, "-c", SHARD_SCRIPT, str(n)], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        out[n] = json.loads(p.stdout.strip().splitlines()[-1])
    assert out[8]["n"] == 8 and out[8]["devices"] == 8 and out[1]["devices"] == 1
    np.testing.assert_allclose(out[8]["loss"], out[1]["loss"], rtol=1e-5)


MESH2D_SCRIPT = r"""
import json, numpy as np, jax
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.sweeps import sweep
import jaxmlp.training.compile as T
s = load_splits(DataConfig(dataset="digits", n_samples=300))
kw = dict(model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, batch_size=32),
          grid={"width": [8, 16], "lr": [0.05, 0.1, 0.2]}, seeds=2)
one = sweep(s, n_devices=1, **kw)
T._EXECUTABLES.cache_clear()
two = sweep(s, n_devices=8, data_devices=2, **kw)
exe = next(iter(T._EXECUTABLES.values()))
print(json.dumps({"one": one.column("test_loss").tolist(), "two": two.column("test_loss").tolist(),
                  "h1": np.nan_to_num(one.histories["train_loss"]).tolist(),
                  "h2": np.nan_to_num(two.histories["train_loss"]).tolist(),
                  "mesh": dict(exe.input_shardings[0][0]["params"][0]["W"].mesh.shape),
                  "all_reduce": "all-reduce" in exe.as_text(),
                  "share": two.info["programs"][0]["models_per_order"]}))
"""


def test_2d_models_by_data_mesh_matches_one_device():
    """4 model groups x 2 data devices: each model's batch is split over the data axis (XLA
    adds the gradient all-reduce), the models over the model axis, the 3 models of a seed and
    group sharing one data order; same results as 1 device."""
    env = cpu_env(XLA_FLAGS=FORCED_8)
    p = subprocess.run([sys.executable, "-c", MESH2D_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["mesh"] == {"models": 4, "data": 2}
    assert out["all_reduce"] and out["share"] == 3  # 12 models: 4 groups of 3, one per device
    np.testing.assert_allclose(out["two"], out["one"], rtol=1e-5)
    np.testing.assert_allclose(out["h2"], out["h1"], rtol=1e-5)


def test_order_share_groups_models_of_one_seed():
    from jaxmlp.sweeps import plan as S
    m = lambda seeds: [{"seed": s} for s in seeds]
    assert S.order_share(m([0] * 4 + [1] * 4), 1) == 4
    assert S.order_share(m([0] * 4 + [1] * 4), 2) == 4
    assert S.order_share(m([0] * 4 + [1] * 4), 4) == 2   # 4 groups of 2 over 4 devices
    assert S.order_share(m([0] * 4 + [1] * 4), 8) == 1   # one model per device
    assert S.order_share(m([0] * 6 + [1] * 6), 8) == 1   # 12 models never divide over 8
    assert S.order_share(m([0, 0, 1]), 1) == 1           # unequal runs
    assert S.order_share(m([0, 1, 0, 1]), 1) == 1        # seeds not side by side


def test_models_sharing_an_order_train_as_with_their_own_orders(monkeypatch):
    """The grouped program (shared batches, one wide first-layer product per group) gives every
    model the same trajectory as the per-model program, to float32 round-off."""
    from jaxmlp.sweeps import plan as sweep_plan
    s = load_splits(DataConfig(dataset="digits", n_samples=300))
    kw = dict(model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=4, batch_size=32, patience=2),
              grid={"width": [8, 16], "lr": [0.05, 0.2], "temperature": [0.5, 2.0]}, seeds=2,
              packing="pad")
    grouped = sweep(s, **kw)
    assert grouped.info["programs"][0]["models_per_order"] == 8
    monkeypatch.setattr(sweep_plan, "order_share", lambda *a: 1)
    alone = sweep(s, **kw)
    assert alone.info["programs"][0]["models_per_order"] == 1
    for key in ("train_loss", "val_loss", "test_accuracy"):
        np.testing.assert_allclose(grouped.histories[key], alone.histories[key], rtol=2e-5, atol=1e-6)
    for i in range(len(grouped.rows)):
        for a, b in zip(jax.tree.leaves(grouped.params(i)), jax.tree.leaves(alone.params(i))):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("partitionable", [True, False])
@pytest.mark.parametrize("parametrization", ["sp", "mup"])
def test_sweep_initialises_every_model_as_fit(partitionable, parametrization):
    """One draw at the widest shape, scaled and cut per model (partitionable threefry), or one
    draw per distinct size (otherwise): either way fit's initialisation, padded with exact
    zeros."""
    from jaxmlp.sweeps.plan import pad_layout
    from jaxmlp.sweeps.program import build_program, model_mesh
    from jaxmlp.sweeps.axes import member_sizes
    from jaxmlp.training import fast_jit, init_key, init_model
    s = load_splits(DataConfig(dataset="digits", n_samples=200))
    model = ModelConfig(hidden=(32, 32), parametrization=parametrization, base_width=8)
    members = expand_grid({"width": [4, 16, 32], "lr": [0.1]}, 2, TrainConfig(), model)
    sizes = tuple(member_sizes(model, m, s.n_features, s.n_outputs) for m in members)
    assert [sz[1:3] for sz in sizes[::2]] == [(4, 4), (16, 16), (32, 32)]
    with jax.threefry_partitionable(partitionable):
        prog = build_program(s, model, TrainConfig(epochs=1), members, sizes,
                             pad_layout(members, sizes, 1, 1), model_mesh(1)[0])
        params = jax.device_get(prog.init()[0]["params"])
        for i, m in enumerate(members):
            sizes = list(member_sizes(model, m, s.n_features, s.n_outputs))
            ref = jax.device_get(fast_jit(lambda k: init_model(k, model, sizes), once=True)(
                init_key(m["seed"])))   # as fit's initial-state program computes it
            for l, layer in enumerate(ref):
                W = params[l]["W"][i]
                # equal up to float32 rounding of the scale (XLA may fold fit's constant std
                # into the draw's own sqrt(2) factor; the sweep's per-model std is an array)
                np.testing.assert_allclose(W[:sizes[l], :sizes[l + 1]], layer["W"], rtol=3e-7, atol=0)
                assert not W[sizes[l]:].any() and not W[:, sizes[l + 1]:].any()
