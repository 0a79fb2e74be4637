"""The sweep's axes table (``jaxmlp.sweeps.axes``): expansion, checks, each model's sizes and
row values; depth as a sweep axis (one set of programs per depth, every model equal to fit);
resuming a sweep of several depths."""
import jax
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import CheckpointError, ConfigError
from jaxmlp.sweeps import GRID_AXES, expand_grid, sweep
from jaxmlp.sweeps import axes as A
from helpers import fit_like_sweep
from helpers import max_abs_diff as _max_diff


def test_the_table_names_every_axis_once():
    assert GRID_AXES == ("width", "depth", "lr", "temperature", "l2", "momentum", "seed")
    assert A.SHAPE_AXES == ("width", "depth")
    assert A.TRACED_AXES == ("lr", "temperature", "l2", "momentum", "seed")
    assert all(A.AXES[n].sets == f"TrainConfig.{n}" for n in A.TRACED_AXES)
    assert [(n, t) for n, t, _ in A.cli_axes()] == [
        ("width", int), ("depth", int), ("lr", float), ("temperature", float), ("l2", float),
        ("momentum", float)]
    assert all(isinstance(h, str) and h for _, _, h in A.cli_axes())


def test_depth_width_lr_grid_expands_to_every_combination():
    model = ModelConfig(hidden=(32,))
    members = expand_grid({"depth": [1, 2, 3], "width": [4, 8], "lr": [0.1, 0.2]}, seeds=2,
                          model=model)
    assert len(members) == 24
    assert {(m["depth"], m["width"], m["lr"], m["seed"]) for m in members} == {
        (d, w, lr, s) for d in (1, 2, 3) for w in (4, 8) for lr in (0.1, 0.2) for s in (0, 1)}
    assert [m["seed"] for m in members[:4]] == [0, 1, 0, 1]   # seed innermost
    for m in members:
        assert A.member_sizes(model, m, 64, 10) == (64, *(m["width"],) * m["depth"], 10)
        row = A.row_values(model, m)
        assert (row["width"], row["depth"]) == (m["width"], m["depth"])
        assert A.train_for(TrainConfig(epochs=3), m) == TrainConfig(epochs=3, lr=m["lr"],
                                                                    seed=m["seed"])


def test_width_and_depth_defaults():
    # depth without a width axis: each layer the model's first hidden size
    m = expand_grid({"depth": [3]}, model=ModelConfig(hidden=(16, 8)))[0]
    assert A.hidden_for(ModelConfig(hidden=(16, 8)), m) == (16, 16, 16)
    # neither axis: the model's own sizes, unequal ones kept (width column None)
    own = expand_grid({"lr": [0.1]}, model=ModelConfig(hidden=(16, 8)))[0]
    assert A.member_sizes(ModelConfig(hidden=(16, 8)), own, 5, 2) == (5, 16, 8, 2)
    assert A.row_values(ModelConfig(hidden=(16, 8)), own)["width"] is None
    assert A.row_values(ModelConfig(hidden=(16, 8)), own)["depth"] == 2
    # width without depth: every one of the model's layers that wide
    w = expand_grid({"width": [4]}, model=ModelConfig(hidden=(16, 8)))[0]
    assert A.hidden_for(ModelConfig(hidden=(16, 8)), w) == (4, 4)
    # no hidden layers: a width axis needs a depth axis and the other way round
    flat = ModelConfig(hidden=())
    assert A.hidden_for(flat, expand_grid({"width": [4], "depth": [2]}, model=flat)[0]) == (4, 4)
    with pytest.raises(ConfigError, match="depth sweep needs a width"):
        expand_grid({"depth": [2]}, model=flat)
    with pytest.raises(ConfigError, match="width sweep needs"):
        expand_grid({"width": [2]}, model=flat)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "a", True, None])
def test_bad_depth_values_name_the_axis_and_value(bad):
    with pytest.raises(ConfigError, match=rf"sweep axis depth.*got {repr(bad)}$"):
        expand_grid({"depth": [1, bad]})


@pytest.mark.parametrize("grid, match", [
    ({"width": [8, 2.5]}, r"sweep axis width.*got 2\.5"),
    ({"lr": [0.1, "a"]}, r"sweep axis lr.*got 'a'"),
    ({"lr": [0.1, -1.0]}, r"sweep axis lr value -1\.0: learning rate must be > 0"),
    ({"momentum": [1.0]}, r"sweep axis momentum value 1\.0: momentum must be in \[0, 1\)"),
    ({"seed": [-1]}, r"sweep axis seed value -1: seed must be"),
    ({"width": [2**40]}, r"sweep axis width value 1099511627776: hidden sizes"),
    ({"depth": []}, r"sweep axis depth is empty"),
    ({"depth": 2}, r"sweep axis depth must be a list"),
    ({"dept": [1]}, r"unknown sweep axis dept; use width, depth, lr"),
])
def test_bad_values_of_other_axes(grid, match):
    with pytest.raises(ConfigError, match=match):
        expand_grid(grid)


@pytest.mark.parametrize("grid,seeds,match", [
    ({"lr": [0.1, 0.2, 0.1]}, 1, "axis lr lists 0.1 more than once"),
    ({"width": [16, 32, 16]}, 1, "axis width lists 16 more than once"),
    ({"depth": [2, 1, 2]}, 1, "axis depth lists 2 more than once"),
    ({}, [3, 1, 3], "axis seed lists 3 more than once"),
    ({"seed": [0, 0]}, 1, "axis seed lists 0 more than once"),
])
def test_a_value_listed_twice_is_an_error(grid, seeds, match):
    with pytest.raises(ConfigError, match=match):
        expand_grid(grid, seeds, model=ModelConfig(hidden=(8,)))


def test_values_are_stored_as_the_axis_type():
    m = expand_grid({"lr": [1, np.float32(0.5)], "width": [np.int64(4)]})
    assert [type(x["lr"]) for x in m] == [float, float] and type(m[0]["width"]) is int


def test_depth_sweep_trains_each_depth_in_its_own_programs_equal_to_fit(small):
    model = ModelConfig(hidden=(8,))
    train = TrainConfig(epochs=3, batch_size=64, momentum=0.5)
    res = sweep(small, model=model, train=train, grid={"depth": [1, 2, 3], "lr": [0.05, 0.2]},
                seeds=[1])
    assert res.info["strategy"] == "depth" and len(res.info["programs"]) == 3
    assert set(res.info["packing"]["plan"]) == {"1", "2", "3"}
    assert [r["depth"] for r in res.rows] == [1, 1, 2, 2, 3, 3]
    assert [r["width"] for r in res.rows] == [8] * 6
    assert [r["program"] for r in res.rows] == [0, 0, 1, 1, 2, 2]
    for i, r in enumerate(res.rows):
        p, h = fit_like_sweep(small, model=ModelConfig(hidden=(8,) * r["depth"]),
                      train=train.replace(lr=r["lr"], seed=1))
        assert len(res.params(i)) == r["depth"] + 1
        assert _max_diff(p, res.params(i)) < 2e-5
        np.testing.assert_allclose(res.histories["train_loss"][i], h["train_loss"], rtol=1e-5,
                                   atol=1e-6)
        assert r["test_accuracy"] == pytest.approx(h["final"]["test_accuracy"], abs=1e-6)
    # another lr and seed: the same three programs, no new trace
    before = jm.trace_count()
    sweep(small, model=model, train=train, grid={"depth": [1, 2, 3], "lr": [0.1, 0.3]}, seeds=[4])
    assert jm.trace_count() == before


def test_depth_by_width_sweep_packs_each_depth(small):
    model = ModelConfig(hidden=(8,), activation="relu")
    train = TrainConfig(epochs=3, batch_size=64)
    res = sweep(small, model=model, train=train, grid={"width": [4, 12], "depth": [1, 2]},
                seeds=2, packing="pack")
    assert res.info["strategy"] == "depth"
    assert res.info["packing"]["plan"] == {"1": [[4], [12]], "2": [[4], [12]]}
    assert [p["layout"] for p in res.info["programs"]] == ["pack", "pack"]
    assert [[g["sizes"] for g in p["groups"]] for p in res.info["programs"]] == [
        [[64, 4, 10], [64, 12, 10]], [[64, 4, 4, 10], [64, 12, 12, 10]]]
    assert res.info["flop_efficiency"] == 1.0
    assert [(r["width"], r["depth"], r["seed"]) for r in res.rows] == [
        (w, d, s) for w in (4, 12) for d in (1, 2) for s in (0, 1)]
    i = next(i for i, r in enumerate(res.rows)
             if (r["width"], r["depth"], r["seed"]) == (4, 2, 1))
    p, h = fit_like_sweep(small, model=ModelConfig(hidden=(4, 4), activation="relu"),
                  train=train.replace(seed=1))
    assert _max_diff(p, res.params(i)) < 2e-5
    np.testing.assert_allclose(res.histories["train_loss"][i], h["train_loss"], rtol=1e-5)


def test_a_sweep_of_several_depths_resumes_bit_identically(small):
    """A snapshot taken in the second depth's program (the first finished): its per-depth
    plan replaces ``packing``; states given as they came or as their leaves."""
    snaps = []
    keep = lambda snap: snaps.append(dict(snap, programs=jax.tree.map(np.copy, snap["programs"])))
    kw = dict(model=ModelConfig(hidden=(8,)), grid={"width": [4, 8], "depth": [1, 2]}, seeds=2,
              train=TrainConfig(epochs=4, batch_size=64, checkpoint_every=2))
    full = sweep(small, packing="pack", on_chunk=keep, **kw)
    mid = next(s for s in snaps if len(s["programs"]) == 2 and s["programs"][1]["epoch"] == 2)
    assert mid["packing"] == {"1": [[4], [8]], "2": [[4], [8]]}
    leaves = dict(mid, programs=[dict(p, state=jax.tree.leaves(p["state"]))
                                 for p in mid["programs"]])
    for resume in (mid, leaves):
        again = sweep(small, packing="pad", resume=resume, **kw)
        assert [p["layout"] for p in again.info["programs"]] == ["pack", "pack"]
        np.testing.assert_array_equal(full.histories["train_loss"], again.histories["train_loss"])
        for i in range(len(full.rows)):
            assert _max_diff(full.params(i), again.params(i)) == 0.0
    wrong = dict(leaves, programs=[leaves["programs"][0],
                                   dict(leaves["programs"][1], state=leaves["programs"][1]["state"][1:])])
    with pytest.raises(CheckpointError, match="arrays"):
        sweep(small, resume=wrong, **kw)


def test_a_model_of_unequal_widths_without_shape_axes_trains_at_its_own_sizes(small):
    """(Before the table, the sweep trained every hidden layer at the model's last width.)"""
    model, train = ModelConfig(hidden=(12, 6)), TrainConfig(epochs=2, batch_size=64)
    res = sweep(small, model=model, train=train, grid={"lr": [0.1, 0.3]})
    assert [(r["width"], r["depth"]) for r in res.rows] == [(None, 2)] * 2
    p, _ = fit_like_sweep(small, model=model, train=train.replace(lr=0.3))
    assert [l["W"].shape for l in res.params(1)] == [(64, 12), (12, 6), (6, 10)]
    assert _max_diff(p, res.params(1)) < 2e-5
