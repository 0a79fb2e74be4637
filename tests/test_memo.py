"""Programs kept in memory are bounded and released (jaxmlp.training.memo)."""
import gc
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import memory_maps
from jaxmlp import clear_caches, fit
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.training import compile as C
from jaxmlp.training.memo import Programs, memo


def test_programs_keep_the_most_recently_used():
    cache = Programs(maxsize=3)
    for k in "abc":
        cache.put(k, k.upper())
    assert cache.get("a") == "A"          # a is now the most recent: b goes first
    cache.put("d", "D")
    assert len(cache) == 3 and cache.get("b") is None
    assert sorted(cache.values()) == ["A", "C", "D"]
    cache.put("e", "E")                   # then c
    assert cache.get("c") is None and cache.get("a") == "A"


def test_memo_is_bounded_and_cleared():
    calls = []

    @memo
    def build(n):
        calls.append(n)
        return n * 2

    assert [build(1), build(1), build(2)] == [2, 2, 4] and calls == [1, 2]
    clear_caches()
    assert build(1) == 2 and calls == [1, 2, 1]
    for n in range(200):
        build(n)
    assert build.cache_info().currsize == build.cache_info().maxsize == 64


def _fit(n_features: int):
    rng = np.random.default_rng(n_features)
    X = rng.normal(size=(64, n_features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    return fit((X, y), model=ModelConfig(hidden=(4,)), train=TrainConfig(epochs=2, batch_size=16))


def test_fits_of_many_shapes_keep_a_bounded_number_of_executables(monkeypatch):
    clear_caches()
    monkeypatch.setattr(C._EXECUTABLES, "maxsize", 3)
    for d in range(2, 8):  # six shapes, one training chunk each
        _fit(d)
    assert len(C._EXECUTABLES) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_clear_caches_returns_the_memory_maps_of_compiled_programs():
    clear_caches()
    gc.collect()
    before = memory_maps()
    for d in range(2, 10):
        _fit(d)
    grown = memory_maps()
    clear_caches()
    gc.collect()
    after = memory_maps()
    # each fit compiles a few programs of ~10 maps each; nearly all come back
    assert grown - before > 50
    assert after - before < 0.2 * (grown - before), (before, grown, after)
    # and JAX's own caches are emptied too: a jitted function compiles again
    f = jax.jit(lambda x: x + 1)
    f(jnp.ones(3))
    clear_caches()
    assert f._cache_size() == 0
