"""Values of softmax, cross-entropy, MSE, entropy: seed examples, limits and properties."""
import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmlp as jm

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=32)


def test_seed_softmax_example():
    p = jm.softmax(jnp.array([2.3, 1.1, -0.5]))
    np.testing.assert_allclose(p, [0.734, 0.221, 0.0446], atol=6e-4)
    e = np.exp([2.3, 1.1, -0.5])
    np.testing.assert_allclose(e, [9.97, 3.00, 0.61], atol=0.01)
    assert abs(e.sum() - 13.58) < 0.01


@pytest.mark.parametrize("T", [0.01, 0.05])
def test_low_temperature_approaches_one_hot_argmax(T):
    z = jnp.array([2.3, 1.1, -0.5])
    np.testing.assert_allclose(jm.softmax(z, T), [1.0, 0.0, 0.0], atol=1e-6)


def test_high_temperature_approaches_uniform_and_smooths_monotonically():
    z = jnp.array([2.3, 1.1, -0.5])
    np.testing.assert_allclose(jm.softmax(z, 1e4), np.full(3, 1 / 3), atol=1e-4)
    entropies = [float(jm.entropy(jm.softmax(z, T))) for T in (0.5, 1, 2, 4, 8)]
    assert all(a < b for a, b in zip(entropies, entropies[1:]))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(2, 12), elements=finite), finite,
       st.floats(0.05, 20))
def test_softmax_shift_invariance_and_normalisation(z, c, T):
    p1 = jm.softmax(jnp.asarray(z), T)
    p2 = jm.softmax(jnp.asarray(z + np.float32(c)), T)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert abs(float(jnp.sum(p1)) - 1.0) < 1e-5


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(2, 8)), elements=finite),
       st.data())
def test_cross_entropy_is_minus_log_p_correct_and_bits(logits, data):
    B, K = logits.shape
    labels = np.array(data.draw(st.lists(st.integers(0, K - 1), min_size=B, max_size=B)), np.int32)
    ce = jm.cross_entropy_per_example(jnp.asarray(logits), jnp.asarray(labels))
    p = np.asarray(jm.softmax(jnp.asarray(logits)), np.float64)
    expect = -np.log(p[np.arange(B), labels])
    np.testing.assert_allclose(ce, expect, rtol=1e-4, atol=1e-4)
    onehot = jax.nn.one_hot(labels, K)
    np.testing.assert_allclose(jm.cross_entropy(jnp.asarray(logits), onehot),
                               jm.cross_entropy(jnp.asarray(logits), jnp.asarray(labels)), atol=1e-5)
    np.testing.assert_allclose(jm.cross_entropy_bits(jnp.asarray(logits), jnp.asarray(labels)),
                               jm.cross_entropy(jnp.asarray(logits), jnp.asarray(labels)) / math.log(2),
                               rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(2, 10), elements=finite),
       hnp.arrays(np.float32, st.integers(2, 10), elements=st.floats(0, 1, width=32)))
def test_cross_entropy_at_least_entropy(model_logits, p_raw):
    """Gibbs' inequality: H_Pm(C) >= H(C) for any model distribution Pm."""
    K = min(len(model_logits), len(p_raw))
    p = np.asarray(p_raw[:K], np.float64) + 1e-3
    p = (p / p.sum()).astype(np.float32)
    H = float(jm.entropy_bits(jnp.asarray(p)))
    Hpm = float(jm.cross_entropy_bits(jnp.asarray(model_logits[None, :K]), jnp.asarray(p[None])))
    assert Hpm >= H - 1e-4


def test_entropy_in_bits_values():
    assert float(jm.entropy_bits(jnp.array([0.5, 0.5]))) == pytest.approx(1.0)
    assert float(jm.entropy_bits(jnp.array([0.25] * 4))) == pytest.approx(2.0)
    assert float(jm.entropy_bits(jnp.array([1.0, 0.0]))) == pytest.approx(0.0)
    # one-hot target: cross-entropy in bits is -log2 Pm(correct)
    z = jnp.array([[2.3, 1.1, -0.5]])
    assert float(jm.cross_entropy_bits(z, jnp.array([1]))) == pytest.approx(
        -math.log2(float(jm.softmax(z)[0, 1])), rel=1e-5)


def test_mse_matches_hand_computation():
    pred = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]])
    target = jnp.array([[0.0, 2.0], [1.0, 1.0], [3.0, 5.0]])
    # per example: mean over k=2 outputs: (1+0)/2, (1+4)/2, (0+4)/2 -> 0.5, 2.5, 2.0; batch mean 5/3
    np.testing.assert_allclose(jm.mse_per_example(pred, target), [0.5, 2.5, 2.0])
    assert float(jm.mse(pred, target)) == pytest.approx(5 / 3)
    assert float(jm.mse(pred, target, weights=jnp.array([1.0, 1.0, 0.0]))) == pytest.approx(1.5)


@pytest.mark.parametrize("T", [1e-2, 1.0, 1e2])
def test_stable_at_extreme_logits_and_temperatures(T):
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], jnp.float32)
    labels = jnp.array([1, 2])
    soft = jnp.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    for v in (jm.softmax(z, T), jm.log_softmax(z, T), jm.cross_entropy(z, labels, T),
              jm.cross_entropy(z, soft, T), jm.entropy_from_logits(z, T),
              jm.kl_divergence(soft, z, T),
              jax.grad(lambda zz: jm.cross_entropy(zz, labels, T))(z)):
        assert bool(jnp.all(jnp.isfinite(v)))
    # the correct value for a hopeless example: -(z_label - z_max)/T
    if T == 1e-2:
        assert float(jm.cross_entropy_per_example(z, labels, T)[0]) == pytest.approx(2e6, rel=1e-6)


def test_distillation_t_squared_scaling_and_kl():
    s = jnp.array([[1.0, 0.0, -1.0]])
    t = jnp.array([[2.0, 0.5, -1.0]])
    y = jnp.array([0])
    T = 3.0
    soft = jm.softmax(t, T)
    expect = T**2 * float(jm.cross_entropy(s, soft, T))
    assert float(jm.distillation_loss(s, t, y, T, alpha=1.0)) == pytest.approx(expect, rel=1e-6)
    assert float(jm.distillation_loss(s, t, y, T, alpha=0.0)) == pytest.approx(
        float(jm.cross_entropy(s, y)), rel=1e-6)
    # KL(p||p) = 0 and KL >= 0
    assert float(jm.kl_divergence(soft, t, T)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(jm.kl_divergence(soft, s, T)[0]) > 0


def test_accuracy_values():
    logits = jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert float(jm.accuracy(logits, jnp.array([0, 1, 1, 1]))) == pytest.approx(0.75)
    assert float(jm.accuracy(logits, jax.nn.one_hot(jnp.array([0, 1, 1, 1]), 2))) == pytest.approx(0.75)
