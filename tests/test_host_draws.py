"""Initialisation bits drawn on the host (``jaxmlp.host_draws``) are JAX's, bit for bit: the
hash against JAX's own, the bits against ``jax.random.bits``, the normals against
``standard_normals``, and whole initialisations of ``fit`` and ``sweep`` against the
in-program draw they replace."""
import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxmlp
from jaxmlp import host_draws
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.nn import standard_normals
from jaxmlp.training import fitting, init_key
from jaxmlp.training.memo import clear_caches

u32 = st.integers(0, 2**32 - 1)


@settings(max_examples=30, deadline=None)
@given(u32, u32, st.lists(st.tuples(u32, u32), min_size=1, max_size=9))
def test_hash_is_jaxs(k1, k2, counters):
    x1, x2 = (np.asarray(c, np.uint32) for c in zip(*counters))
    want = jax.extend.random.threefry_2x32(jnp.asarray([k1, k2], jnp.uint32),
                                           jnp.concatenate([x1, x2]))
    got = host_draws.threefry2x32(k1, k2, x1, x2)
    # JAX's threefry_2x32 hashes a count array's two halves as the pairs
    assert np.array_equal(np.concatenate(got), np.asarray(want))


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31 - 1, 2**32 - 1])
def test_key_is_init_keys(seed):
    assert np.array_equal(host_draws.key_data(seed),
                          np.asarray(jax.random.key_data(init_key(np.uint32(seed)))))


@pytest.mark.parametrize("seed,sizes", [(0, [3, 5, 2]), (7, [64, 128, 10]), (2**32 - 1, [1, 1]),
                                        (3, [13, 1, 17, 4])])
def test_bits_are_jax_random_bits(seed, sizes):
    keys = jax.random.split(init_key(np.uint32(seed)), len(sizes) - 1)
    got = host_draws.weight_bits(seed, sizes)
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        want = np.stack([np.asarray(jax.random.bits(jax.random.fold_in(keys[l], i), (fan_out,),
                                                    jnp.uint32)) for i in range(fan_in)])
        assert got[l].dtype == np.uint32 and np.array_equal(got[l], want)


@pytest.mark.parametrize("sizes", [[64, 128, 10], [784, 64, 64, 10], [2, 3]])
@pytest.mark.parametrize("once", [True, False])
def test_normals_are_standard_normals(sizes, once):
    from jaxmlp.training.compile import fast_jit
    key = init_key(np.uint32(5))
    want = fast_jit(lambda k: standard_normals(k, sizes), once=once)(key)
    got = fast_jit(lambda b: [host_draws.normals_from_bits(x) for x in b], once=once)(
        host_draws.weight_bits(5, sizes))
    for w, g in zip(want, got):
        assert np.array_equal(np.asarray(w), np.asarray(g))
    with pytest.raises(ValueError, match="32-bit"):
        host_draws.normals_from_bits(host_draws.weight_bits(5, sizes)[0], np.float16)


def test_threshold_and_partitionable_flag():
    assert host_draws.on_host(host_draws.HOST_DRAW_MAX)
    assert not host_draws.on_host(host_draws.HOST_DRAW_MAX + 1)
    with jax.threefry_partitionable(False):  # the bits would differ: drawn in the program
        assert not host_draws.on_host(10)


def _fit_params(data, model, monkeypatch, host: bool):
    monkeypatch.setattr(host_draws, "HOST_DRAW_MAX", 2**22 if host else 0)
    clear_caches()
    from jaxmlp.training.inputs import as_splits
    return fitting.prepare(as_splits(data), model, TrainConfig(seed=11)).state["params"]


@pytest.mark.parametrize("model", [ModelConfig(hidden=(48, 16)),
                                   ModelConfig(hidden=(40,), activation="relu",
                                               parametrization="mup", base_width=16)])
def test_fit_initialisation_same_on_both_paths(model, monkeypatch):
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(90, 7)).astype(np.float32), rng.integers(0, 3, 90))
    host = _fit_params(data, model, monkeypatch, True)
    program = _fit_params(data, model, monkeypatch, False)
    for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(program)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert float(jnp.std(host[0]["W"])) > 0.1  # a real draw, not zeros


def test_host_path_compiles_no_random_number_code(monkeypatch):
    """The claim behind the host path: the initialisation program holds no threefry hash."""
    monkeypatch.setattr(host_draws, "HOST_DRAW_MAX", 2**22)
    sizes = (7, 16, 3)
    from jaxmlp.training.spec import make_spec
    spec = make_spec(ModelConfig(hidden=(16,)), TrainConfig(), task="classification", n_train=10,
                     has_val=False, has_test=False, n_features=7)
    make = fitting._initial_state(spec, ModelConfig(hidden=(16,)), sizes)
    host = make.trace(None, host_draws.weight_bits(0, sizes), np.float32(0)).jaxpr
    program = make.trace(None, np.uint32(0), np.float32(0)).jaxpr
    assert "random_bits" in str(program)  # the in-program draw, for contrast
    assert "random_bits" not in str(host) and "threefry" not in str(host)


def test_sweep_initialisation_same_on_both_paths(monkeypatch):
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(80, 5)).astype(np.float32), rng.integers(0, 2, 80))
    grid = {"width": [4, 16], "lr": [0.1, 0.3], "seed": [0, 3]}  # seeds shared by 4 models
    out = []
    for host in (True, False):
        monkeypatch.setattr(host_draws, "HOST_DRAW_MAX", 2**22 if host else 0)
        clear_caches()
        res = jaxmlp.sweep(data, model=ModelConfig(hidden=(16, 16)), train=TrainConfig(epochs=1),
                           grid=grid)
        out.append([res.params(i) for i in range(len(res.rows))])
    assert len(out[0]) == 8
    for a, b in zip(jax.tree.leaves(out[0]), jax.tree.leaves(out[1])):
        assert np.array_equal(np.asarray(a), np.asarray(b))
