"""A model's metrics: the loss a spec means (``loss_kwargs``), and full-batch loss and
accuracy (classification) or MSE (regression) on one split or on every split (traceable).
"""
from __future__ import annotations

import contextlib

import jax.numpy as jnp

from jaxmlp import losses as L
from jaxmlp import registry
from jaxmlp.nn import forward
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


def evaluate(spec_or_kw, params, X, y, hp=None) -> dict:
    """Full-batch loss and accuracy (classification data, whatever the loss) or MSE
    (regression)."""
    if isinstance(spec_or_kw, Spec):
        kw = loss_kwargs(spec_or_kw, hp)
        scope = precision_scope(spec_or_kw)
    else:
        kw, scope = dict(spec_or_kw), contextlib.nullcontext()
    loss_name = kw.pop("loss")
    temperature = kw.pop("temperature", 1.0)
    with scope:
        out = forward(params, X, **kw)
    res = {"loss": jnp.mean(L.loss_per_example(loss_name, out, y, temperature))}
    # class labels (whatever the loss: ce, or mse/huber on their one-hot) or probability
    # targets: accuracy; regression targets: MSE
    if registry.is_labels(y) or registry.loss(loss_name).soft_targets:
        res["accuracy"] = L.accuracy(out, y)
    else:
        res["mse"] = jnp.mean(L.mse_per_example(out, y))
    return res


def split_metrics(spec: Spec, params, hp: dict, data: dict) -> dict:
    """Loss and accuracy/MSE of ``params`` on every split present in ``data`` (traceable)."""
    out = {}
    for split in ("train", "val", "test"):
        if f"X_{split}" in data:
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            ev = evaluate(spec, params, X, y, hp)
            out.update({f"{split}_{k}": v for k, v in ev.items()})
    return out
