"""A model's metrics: the loss a spec means (``loss_kwargs``), and full-batch loss and
accuracy (classification) or MSE (regression) on one split or on every split (traceable).
"""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import losses as L
from jaxmlp import registry
from jaxmlp.nn import forward
from jaxmlp.parallel import rows_sharding
from jaxmlp.training.spec import Spec, precision_scope


def _compute_dtype(spec: Spec):
    return None if spec.compute_dtype == "float32" else jnp.dtype(spec.compute_dtype)


def loss_kwargs(spec: Spec, hp) -> dict:
    """The keyword arguments of ``batch_loss`` / ``forward`` for programs of ``spec`` with
    hyperparameters ``hp`` (activation, loss, temperature, masks, compute dtype)."""
    kw = dict(activation=spec.activation, loss=spec.loss, temperature=hp["temperature"])
    if spec.masked:
        kw["masks"] = hp["masks"]
    if spec.compute_dtype != "float32":
        kw["compute_dtype"] = _compute_dtype(spec)
    return kw


#: An evaluation over more rows than this many activations' worth (rows x the widest layer,
#: per model) runs in blocks of rows accumulating sums, so a large split never holds all its
#: activations at once (a sweep multiplies them by its models: 16 models 2048 wide on 700,000
#: rows would be ~92 GB). Below it, one full-batch pass.
EVAL_BLOCK_VALUES = 2**22


def evaluate(spec_or_kw, params, X, y, hp=None) -> dict:
    """Loss and accuracy (classification data, whatever the loss) or MSE (regression), as
    means over every row: one full-batch pass, or blocks of rows (``EVAL_BLOCK_VALUES``; the
    same numbers to round-off)."""
    mesh = None
    if isinstance(spec_or_kw, Spec):
        kw = loss_kwargs(spec_or_kw, hp)
        scope, mesh = precision_scope(spec_or_kw), spec_or_kw.mesh
    else:
        kw, scope = dict(spec_or_kw), contextlib.nullcontext()
    loss_name = kw.pop("loss")
    temperature = kw.pop("temperature", 1.0)
    # class labels (whatever the loss: ce, or mse/huber on their one-hot) or probability
    # targets: accuracy; regression targets: MSE
    second = ("accuracy" if registry.is_labels(y) or registry.loss(loss_name).soft_targets
              else "mse")

    def means(xb, yb, weights=None):
        if mesh is not None:  # data parallel: each device evaluates its share of the rows
            xb, yb = (jax.lax.with_sharding_constraint(a, rows_sharding(mesh)) for a in (xb, yb))
            if weights is not None:
                weights = jax.lax.with_sharding_constraint(weights, rows_sharding(mesh))
        out = forward(params, xb, **kw)
        loss = L.loss_per_example(loss_name, out, yb, temperature)
        if weights is not None:  # rows counted in an earlier block: their values drop out
            loss = jnp.where(weights > 0, loss, 0.0)
        other = (L.accuracy(out, yb, weights) if second == "accuracy"
                 else L.mse(out, yb, weights))
        return {"loss": L._reduce(loss, weights), second: other}

    n = X.shape[0]
    rows = max(1, EVAL_BLOCK_VALUES // max([X.shape[-1]] + [p["W"].shape[-1] for p in params]))
    with scope:
        if n <= rows:
            return means(X, y)
        return _blockwise(means, X, y, rows)


def _blockwise(means, X, y, rows: int) -> dict:
    """``means`` over all of ``X`` in ``ceil(n / rows)`` blocks of ``rows`` rows: the last block
    is the last ``rows`` rows, weighted to count only those no earlier block had."""
    n = X.shape[0]
    starts = np.minimum(np.arange(0, n, rows), n - rows).astype(np.int32)
    firsts = np.arange(0, n, rows, dtype=np.int32)  # the first row each block counts

    def block(total, inp):
        start, first = inp
        xb = jax.lax.dynamic_slice_in_dim(X, start, rows)
        yb = jax.lax.dynamic_slice_in_dim(y, start, rows)
        weights = (start + jnp.arange(rows) >= first).astype(jnp.float32)
        m = means(xb, yb, weights)
        count = jnp.sum(weights)
        return {k: total[k] + m[k] * count for k in total}, None
    zero = jax.tree.map(lambda a: jnp.zeros((), a.dtype),
                        jax.eval_shape(lambda: means(X[:rows], y[:rows])))
    total, _ = jax.lax.scan(block, zero, (jnp.asarray(starts), jnp.asarray(firsts)))
    return {k: v / n for k, v in total.items()}


def split_metrics(spec: Spec, params, hp: dict, data: dict) -> dict:
    """Loss and accuracy/MSE of ``params`` on every split present in ``data`` (traceable)."""
    out = {}
    for split in ("train", "val", "test"):
        if f"X_{split}" in data:
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            ev = evaluate(spec, params, X, y, hp)
            out.update({f"{split}_{k}": v for k, v in ev.items()})
    return out
