"""Calibration: reliability bins and ECE against a direct loop, post-hoc temperature scaling
against a dense search and a known miscalibration."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmlp
from jaxmlp.calibration import expected_calibration_error, fit_temperature, reliability_bins


def ece_loop(probs, labels, n_bins=15):
    """ECE the way Guo et al. write it: bins (lo, hi], one at a time."""
    conf, hit = probs.max(1), (probs.argmax(1) == labels).astype(float)
    total = 0.0
    for lo, hi in zip(np.linspace(0, 1, n_bins + 1)[:-1], np.linspace(0, 1, n_bins + 1)[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return total


def test_ece_hand_example():
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    y = np.array([0, 1, 0])
    # 0.6 (wrong) -> |0 - 0.6|, 0.8 (right) -> |1 - 0.8|, 0.9 (right) -> |1 - 0.9|
    assert expected_calibration_error(p, y) == pytest.approx((0.6 + 0.2 + 0.1) / 3)
    b = reliability_bins(p, y)
    assert b["count"].sum() == 3 and np.nansum(b["accuracy"] * b["count"]) == 2


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(2, 6), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_ece_matches_loop_and_is_bounded(n, k, n_bins, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.5), size=n)
    y = rng.integers(0, k, n)
    e = expected_calibration_error(p, y, n_bins)
    assert 0.0 <= e <= 1.0
    assert e == pytest.approx(ece_loop(p, y, n_bins), abs=1e-12)


def test_bin_edges_belong_to_the_lower_bin():
    # confidences exactly on edges 1/3 and 2/3 with 3 bins: (0, 1/3], (1/3, 2/3], (2/3, 1]
    p = np.array([[1 / 3, 1 / 3, 1 / 3], [2 / 3, 1 / 3, 0.0], [1.0, 0.0, 0.0]])
    assert reliability_bins(p, np.zeros(3, int), 3)["count"].tolist() == [1, 1, 1]


def _nll(z, y, t):
    return float(jaxmlp.cross_entropy(jnp.asarray(z), jnp.asarray(y), temperature=t))


def test_fit_temperature_recovers_a_known_overconfidence():
    # Labels drawn from softmax(z); the model reports 3 z: the right temperature is 3.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 5)).astype(np.float32) * 2.0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(3.0 * z, y)
    assert t == pytest.approx(3.0, rel=0.05)
    # the fitted T is the minimiser: no temperature of a dense grid does better
    grid = np.exp(np.linspace(np.log(0.5), np.log(20), 400))
    best = min(_nll(3.0 * z, y, g) for g in grid)
    assert _nll(3.0 * z, y, t) <= best + 1e-6
    # the slope in log T vanishes there (bisection to float precision)
    slope = jax.grad(lambda lt: jaxmlp.cross_entropy(jnp.asarray(3.0 * z), jnp.asarray(y),
                                                    temperature=jnp.exp(lt)))
    assert abs(float(slope(jnp.log(jnp.float32(t))))) < 1e-4
    # and calibration improves while the predicted classes do not move
    before = np.asarray(jaxmlp.softmax(jnp.asarray(3.0 * z)))
    after = np.asarray(jaxmlp.softmax(jnp.asarray(3.0 * z), temperature=t))
    assert (before.argmax(1) == after.argmax(1)).all()
    assert expected_calibration_error(after, y) < expected_calibration_error(before, y) / 3


def test_fit_temperature_underconfident_and_bounds():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5000, 4)).astype(np.float32)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(0.25 * z, y) == pytest.approx(0.25, rel=0.1)   # under-confident
    # every example right with a margin: the NLL falls as T -> 0, the lower bound is returned
    sep = np.eye(4, dtype=np.float32)[y] * 5.0
    assert fit_temperature(sep, y, low=0.05) == 0.05
    # every example wrong: the NLL falls as T grows, the upper bound is returned
    assert fit_temperature(-sep, y, high=50.0) == 50.0
