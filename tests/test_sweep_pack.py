"""Packed sweeps: every width at its own size in one compiled program (``jaxmlp.sweeps.plan``),
equal to ``fit`` and to the padded layout, with early stopping, divergence, streams, resume,
checkpoints and sharding; the layout and the automatic choice."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError
from helpers import FORCED_8, cpu_env, fit_like_sweep, require_one_cpu_device
from helpers import max_abs_diff as _max_diff
from jaxmlp.sweeps import expand_grid, sweep
from jaxmlp.sweeps import plan as P
from jaxmlp.sweeps.axes import member_sizes


def _members(widths, lrs, seeds, hidden=1):
    model = ModelConfig(hidden=(max(widths),) * hidden)
    members = expand_grid({"width": widths, "lr": lrs}, seeds, TrainConfig(), model)
    sizes = [member_sizes(model, m, 64, 10) for m in members]
    return members, sizes


def test_pack_layout_groups_slots_and_device_repeats():
    members, sizes = _members([4, 8, 16], [0.1, 0.2], 2)   # grid order: width, lr, seed
    order = sorted(range(len(members)), key=lambda i: members[i]["seed"])
    ms, sz = [members[i] for i in order], [sizes[i] for i in order]
    lay = P.pack_layout(ms, sz, 1, 1)
    assert lay.packed and lay.ks == (2, 2, 2) and lay.n_slots == 2
    assert [s[1] for s in lay.sizes] == [4, 8, 16]
    assert all(sz[i] == lay.sizes[g] for g, t in enumerate(lay.takes) for i in t)
    assert lay.slot_seeds(ms) == [0, 1]
    assert [ms[lay.takes[g][j]]["seed"] for g, j in lay.slots()] == [0] * 6 + [1] * 6
    four = P.pack_layout(ms, sz, 4, 1)     # each seed's models split over two slots
    assert four.ks == (1, 1, 1) and four.n_slots == 4
    eight = P.pack_layout(ms, sz, 8, 1)    # 4 real slots, the last repeated up to 8
    assert eight.n_slots == 8 and eight.takes[0][4:] == (eight.takes[0][3],) * 4
    assert P.pack_layout(ms, sz, 1, 2) is None                        # 2-D mesh
    assert P.pack_layout(ms[:2], sz[:2], 1, 1) is None                # one width
    hybrid = P.pack_layout(ms, sz, 1, 1, [[sz[0], sz[2]], [sz[4]]])   # 4 and 8 padded to 8
    assert hybrid.ks == (4, 2) and [s[1] for s in hybrid.sizes] == [8, 16]
    assert P.masked(hybrid, sz) and not P.masked(lay, sz)


def test_flop_efficiency_counts_padding_and_repeats():
    members, sizes = _members([16, 32, 64, 128], [0.1], 1)
    pad = P.pad_layout(members, sizes, 1, 1)
    per, prog = P.flop_efficiency(pad, sizes)
    np.testing.assert_allclose(per, [16 / 128, 32 / 128, 64 / 128, 1.0])   # 64-w-10: linear in w
    assert prog == pytest.approx(240 / 512)
    per, prog = P.flop_efficiency(P.pack_layout(members, sizes, 1, 1), sizes)
    assert per == [1.0] * 4 and prog == 1.0
    per, prog = P.flop_efficiency(P.pack_layout(members, sizes, 2, 1), sizes)  # 1 slot + a repeat
    assert per == [1.0] * 4 and prog == pytest.approx(0.5)


def test_contiguous_partitions():
    assert P.contiguous_partitions([1, 2, 3]) == [[[1, 2], [3]], [[1], [2, 3]], [[1], [2], [3]]]
    assert P.contiguous_partitions(list(range(12))) == [[[i] for i in range(12)]]


def test_auto_packs_where_padding_costs_more_than_extra_groups():
    """W3's grid (50 epochs of digits) is close to even: padded cold, packed with a compile
    cache (no XLA compile per group); two hidden layers (38% efficient padded) or 200 epochs
    pack; a tiny sweep stays padded."""
    members, sizes = _members([16, 32, 64, 128], [0.03, 0.1, 0.3, 1.0], 4)
    kw = dict(max_pad_ratio=8.0, n_dev=1, data_devices=1, n_train=1258, batches=10)
    plan = lambda m=members, s=sizes, **k: P.plan_programs(m, s, packing="auto", **{**kw, **k})
    assert plan(epochs=50).strategy == "pad"
    cached = plan(epochs=50, cached=True)
    assert cached.strategy == "pack" and cached.choice["compile_cache"]
    assert cached.choice["chosen_cost_gflop"] < cached.choice["pad_cost_gflop"]
    assert plan(epochs=200).choice["plan"] == [[16, 32], [64], [128]]
    deep = plan(*_members([16, 32, 64, 128], [0.03, 0.1, 0.3, 1.0], 4, hidden=2), epochs=50)
    assert deep.strategy == "pack" and deep.choice["plan"] == [[16, 32, 64], [128]]
    tiny = plan(epochs=2, n_train=100, batches=1, cached=True)
    assert tiny.strategy == "pad" and tiny.choice["plan"] == "pad"
    assert P.plan_programs(members, sizes, packing="pack", epochs=2, **kw).choice["plan"] == [
        [16], [32], [64], [128]]
    two_d = P.plan_programs(members, sizes, packing="auto", epochs=200, max_pad_ratio=8.0,
                            n_dev=2, data_devices=2, n_train=1258, batches=10)
    assert two_d.strategy == "pad"
    with pytest.raises(ConfigError, match="packing must be one of"):
        P.plan_programs(members, sizes, packing="tight", epochs=1, **kw)
    with pytest.raises(ConfigError, match="1-D model mesh"):
        P.plan_programs(members, sizes, packing="pack", epochs=1, max_pad_ratio=8.0, n_dev=2,
                        data_devices=2, n_train=1, batches=1)
    with pytest.raises(ConfigError, match="each width once"):
        P.plan_programs(members, sizes, packing=[[16, 32], [64]], epochs=1, **kw)


# lr up to 0.1: at lr 0.2 the width-4 two-layer model at T 0.5 and momentum 0.9 is near its
# stability edge, where training multiplies float32 round-off ~30x an epoch (pad vs pack: 3e-6
# after 3 epochs, 1e-4 after 4 on an AVX2 CPU); at 0.1 every model stays within 2e-6.
GRID = {"width": [4, 12, 24], "lr": [0.05, 0.1], "temperature": [0.5, 2.0], "l2": [0.0, 1e-3],
        "momentum": [0.0, 0.9]}


@pytest.mark.parametrize("hidden", [1, 2])
def test_packed_models_equal_fit_and_the_padded_sweep(small, hidden):
    model = ModelConfig(hidden=(24,) * hidden)
    train = TrainConfig(epochs=4, batch_size=32)
    pack = sweep(small, model=model, train=train, grid=GRID, seeds=[3], packing="pack")
    pad = sweep(small, model=model, train=train, grid=GRID, seeds=[3], packing="pad",
                max_pad_ratio=10)
    assert pack.info["strategy"] == "pack" and pad.info["strategy"] == "pad"
    prog = pack.info["programs"][0]
    assert prog["layout"] == "pack" and [g["sizes"][1] for g in prog["groups"]] == [4, 12, 24]
    assert prog["flop_efficiency"] == 1.0 == pack.info["flop_efficiency"]
    assert pad.info["flop_efficiency"] < 1.0
    assert set(pack.column("flop_efficiency")) == {1.0}
    assert sorted(set(pad.column("flop_efficiency")))[-1] == 1.0
    for key in ("width", "lr", "temperature", "l2", "momentum", "seed"):   # grid order, both
        assert list(pack.column(key)) == list(pad.column(key))
    # both equal fit to float32 round-off (the padded products sum extra zeros in another order)
    for key in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose(pack.histories[key], pad.histories[key], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pack.column("test_loss"), pad.column("test_loss"), rtol=1e-4)
    for w in GRID["width"]:   # a model of each width equals its stand-alone fit
        i = next(i for i, r in enumerate(pack.rows) if r["width"] == w and r["momentum"] == 0.9
                 and r["l2"] > 0 and r["temperature"] == 0.5)
        r = pack.rows[i]
        tc = TrainConfig(epochs=4, batch_size=32, lr=r["lr"], temperature=r["temperature"],
                         l2=r["l2"], momentum=r["momentum"], seed=r["seed"])
        p, h = fit_like_sweep(small, model=ModelConfig(hidden=(w,) * hidden), train=tc)
        assert _max_diff(p, pack.params(i)) < 2e-5
        assert pack.params(i, padded=True)[0]["W"].shape == (64, w)   # never padded
        np.testing.assert_allclose(pack.histories["train_loss"][i], h["train_loss"], rtol=1e-5,
                                   atol=1e-6)
        assert r["test_accuracy"] == pytest.approx(h["final"]["test_accuracy"], abs=1e-6)


def test_groups_of_neighbouring_widths_padded_within_a_packed_program(small):
    """Explicit groups: 4 and 8 share a group padded to 8 (masks), 16 has its own."""
    model = ModelConfig(hidden=(16,), activation="relu")
    train = TrainConfig(epochs=3, batch_size=64, momentum=0.5)
    res = sweep(small, model=model, train=train, grid={"width": [4, 8, 16], "lr": [0.1, 0.3]},
                seeds=2, packing=[[4, 8], [16]])
    prog = res.info["programs"][0]
    assert res.info["strategy"] == "pack" and res.info["packing"]["plan"] == [[4, 8], [16]]
    assert [g["sizes"][1] for g in prog["groups"]] == [8, 16]
    assert prog["flop_efficiency"] < 1.0
    i = next(i for i, r in enumerate(res.rows) if r["width"] == 4 and r["seed"] == 1)
    assert res.rows[i]["flop_efficiency"] == pytest.approx(4 / 8)
    p, h = fit_like_sweep(small, model=ModelConfig(hidden=(4,), activation="relu"),
                  train=train.replace(lr=res.rows[i]["lr"], seed=1))
    assert _max_diff(p, res.params(i)) < 2e-5
    assert res.params(i, padded=True)[0]["W"].shape == (64, 8)
    np.testing.assert_allclose(res.histories["train_loss"][i], h["train_loss"], rtol=1e-5)


def _streams_kw(**extra):
    kw = dict(model=ModelConfig(hidden=(16,), activation="relu"),
              grid={"width": [8, 16], "lr": [0.05, 3.0, 1e6]}, seeds=4,
              train=TrainConfig(epochs=8, batch_size=64, patience=2))
    kw.update(extra)
    return kw


def test_packed_early_stopping_divergence_and_streams(small, monkeypatch):
    require_one_cpu_device()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = sweep(small, packing="pack", **_streams_kw())
    pad = sweep(small, packing="pad", **_streams_kw())
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    two = sweep(small, packing="pack", **_streams_kw())
    assert [p["streams"] for p in one.info["programs"]] == [1]
    assert [p["streams"] for p in two.info["programs"]] == [2]
    assert any(two.column("diverged")) and any(two.column("stopped_early"))
    for other in (one, pad):
        for key in ("epochs_run", "diverged", "stopped_early", "diverged_step", "best_epoch"):
            assert list(two.column(key)) == list(other.column(key)), key
    # equal to round-off (products of other shapes sum in another order), which lr = 3 (val
    # loss in the thousands) amplifies: values compared where lr = 0.05
    stable = two.column("lr") == 0.05
    for other in (one, pad):
        for key in ("train_loss", "val_loss"):
            np.testing.assert_allclose(two.histories[key][stable], other.histories[key][stable],
                                       rtol=1e-5)
    for i in range(len(two.rows)):
        if stable[i]:
            assert _max_diff(one.params(i), two.params(i)) < 1e-5
        assert all(np.all(np.isfinite(np.asarray(l))) for l in jax.tree.leaves(two.params(i)))


def test_packed_resume_from_a_checkpoint_is_bit_identical(small, tmp_path, monkeypatch):
    """A mid-run snapshot saved as the CLI saves it carries its packing: resumed with another
    ``packing`` argument, the sweep continues in the packed layout, bit for bit."""
    require_one_cpu_device()
    from jaxmlp.runs.sweep_folder import load_sweep_checkpoint, save_sweep_checkpoint
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    snaps = []
    keep = lambda snap: snaps.append(dict(snap, programs=jax.tree.map(np.copy, snap["programs"])))
    kw = _streams_kw(train=TrainConfig(epochs=6, batch_size=64, checkpoint_every=2),
                     grid={"width": [8, 16], "lr": [0.05, 0.2]})
    full = sweep(small, packing="pack", on_chunk=keep, **kw)
    assert full.info["programs"][0]["streams"] == 2 and len(snaps) == 3
    assert snaps[0]["programs"][0]["epoch"] == 2 and snaps[0]["packing"] == [[8], [16]]
    save_sweep_checkpoint(tmp_path, snaps[0], {"note": "test"})
    resume, _ = load_sweep_checkpoint(tmp_path)
    assert resume["packing"] == [[8], [16]]
    again = sweep(small, packing="pad", resume=resume, **kw)
    assert again.info["strategy"] == "pack"
    np.testing.assert_array_equal(full.histories["train_loss"], again.histories["train_loss"])
    for i in range(len(full.rows)):
        assert _max_diff(full.params(i), again.params(i)) == 0.0


SHARD_SCRIPT = r"""
import json, sys, numpy as np
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.sweeps import sweep
s = load_splits(DataConfig(dataset="digits", n_samples=300))
res = sweep(s, model=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, batch_size=32),
            grid={"width": [8, 16], "lr": [0.05, 0.1, 0.2]}, seeds=2, n_devices=int(sys.argv[1]),
            packing=sys.argv[2])
p = res.info["programs"][0]
print(json.dumps({"devices": p["devices"], "layout": p["layout"], "eff": p["flop_efficiency"],
                  "loss": [r["test_loss"] for r in res.rows],
                  "h": np.nan_to_num(res.histories["train_loss"]).tolist()}))
"""


def test_packed_model_axis_sharded_over_8_cpu_devices_matches_one_device():
    env = cpu_env(XLA_FLAGS=FORCED_8)
    out = {}
    for n, packing in ((1, "pad"), (8, "pack")):
        p = subprocess.run([sys.executable, "-c", SHARD_SCRIPT, str(n), packing], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        out[n] = json.loads(p.stdout.strip().splitlines()[-1])
    assert out[8]["devices"] == 8 and out[8]["layout"] == "pack"
    assert out[8]["eff"] == pytest.approx(0.75)   # 6 slots of 2 models + 2 repeats: 12 of 16
    np.testing.assert_allclose(out[8]["loss"], out[1]["loss"], rtol=1e-5)
    np.testing.assert_allclose(out[8]["h"], out[1]["h"], rtol=1e-5)
