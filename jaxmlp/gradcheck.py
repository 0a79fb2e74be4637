"""Gradient checks: the hand-derived backward vs ``jax.grad`` vs central finite differences,
layer by layer. Run in float64 (``jax_enable_x64``) for meaningful tolerances."""
from __future__ import annotations

import jax
import numpy as np

from jaxmlp import registry
from jaxmlp.backprop import mlp_value_and_grad
from jaxmlp.objective import batch_loss


#: Below this magnitude a gradient entry is compared absolutely, not relatively: a float64
#: gradient of a loss of order 1 carries round-off of ~1e-16 to 1e-14, which relative to an
#: entry of 1e-13 (a constant input column's weight, a saturated unit) looks like a 1e-3 error.
REL_FLOOR = 1e-6


def _rel(a, b) -> float:
    """max 2 |a - b| / (|a| + |b|), the denominator at least ``REL_FLOOR``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.maximum(np.abs(a) + np.abs(b), REL_FLOOR)
    return float(np.max(2 * np.abs(a - b) / denom)) if a.size else 0.0


def gradcheck(params, x, y, *, activation="tanh", loss="ce", temperature=1.0, n_fd: int = 12,
              eps: float = 1e-6, key=None) -> list[dict]:
    """Compare gradients three ways for every layer's W and b.

    Args:
        params, x, y, activation, loss, temperature: as ``jaxmlp.objective.batch_loss``
            (any ``jaxmlp.registry`` activation and loss; "auto" is resolved by the caller).
        n_fd: entries per parameter array checked by central finite differences
            (randomly chosen with ``key``); all entries are compared manual vs autodiff.
        eps: finite-difference step.

    Returns:
        One dict per (layer, param): ``layer``, ``param``, ``shape``, ``max_abs_manual_vs_autodiff``,
        ``max_rel_manual_vs_autodiff``, ``max_abs_manual_vs_fd``, ``max_rel_manual_vs_fd``.
    """
    registry.activation(activation)  # a ConfigError for unknown names
    registry.loss(loss)
    kw = dict(activation=activation, loss=loss, temperature=temperature)
    key = jax.random.PRNGKey(0) if key is None else key
    _, manual = mlp_value_and_grad(params, x, y, **kw)
    auto = jax.grad(batch_loss)(params, x, y, **kw)
    f = jax.jit(lambda p: batch_loss(p, x, y, **kw))
    rows = []
    for l, (layer_m, layer_a) in enumerate(zip(manual, auto)):
        for name in ("W", "b"):
            gm, ga = np.asarray(layer_m[name]), np.asarray(layer_a[name])
            key, sub = jax.random.split(key)
            flat = np.asarray(jax.random.choice(sub, gm.size, (min(n_fd, gm.size),), replace=False))
            fd, mv = [], []
            for i in flat:
                idx = np.unravel_index(int(i), gm.shape)

                def shifted(d, l=l, name=name, idx=idx):
                    q = [dict(layer) for layer in params]
                    q[l][name] = q[l][name].at[idx].add(d)
                    return float(f(q))
                fd.append((shifted(eps) - shifted(-eps)) / (2 * eps))
                mv.append(gm[idx])
            rows.append({"layer": l, "param": name, "shape": list(gm.shape),
                         "max_abs_manual_vs_autodiff": float(np.max(np.abs(gm - ga))),
                         "max_rel_manual_vs_autodiff": _rel(gm, ga),
                         "max_abs_manual_vs_fd": float(np.max(np.abs(np.asarray(mv) - np.asarray(fd)))),
                         "max_rel_manual_vs_fd": _rel(mv, fd)})
    return rows
