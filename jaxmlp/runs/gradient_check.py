"""The ``jaxmlp gradcheck`` command's library side: a float64 model and batch built from a
RunConfig, its gradients compared three ways by ``jaxmlp.gradcheck`` (no folder is written)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmlp.config import RunConfig
from jaxmlp.data import load_splits
from jaxmlp.gradcheck import gradcheck
from jaxmlp.registry import resolve_loss
from jaxmlp.training import init_key, init_model, model_sizes


def check_gradients(cfg: RunConfig, *, n_fd: int = 12) -> dict:
    """Hand-derived backward vs ``jax.grad`` vs finite differences, in float64, on the first
    ``cfg.train.batch_size`` training rows of ``cfg.data`` and a model initialised per
    ``cfg.model`` with ``cfg.train.seed``.

    Returns:
        ``sizes`` (layer sizes), ``loss`` (the resolved loss name), ``n`` (batch rows), ``rows``
        (``jaxmlp.gradcheck.gradcheck``'s per-array errors) and ``worst``: the largest of the
        manual-vs-autodiff relative and manual-vs-finite-difference absolute errors.
    """
    # float64 for meaningful tolerances (restored afterwards), on the CPU: accelerators
    # emulate float64 slowly or (TPUs) not at all, and run float32 matmuls at lower precision
    with jax.enable_x64(True), jax.default_device(jax.devices("cpu")[0]), \
            jax.default_matmul_precision("highest"):
        splits = load_splits(cfg.data)
        loss = resolve_loss(cfg.train.loss, splits.task, cfg.train.temperature)
        sizes = model_sizes(cfg.model, splits.n_features, splits.n_outputs)
        n = min(cfg.train.batch_size, len(splits.X_train))
        x = jnp.asarray(splits.X_train[:n], jnp.float64)
        y = jnp.asarray(splits.y_train[:n], jnp.int32 if splits.task == "classification" else jnp.float64)
        params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64),
                              init_model(init_key(cfg.train.seed), cfg.model, sizes))
        rows = gradcheck(params, x, y, activation=cfg.model.activation, loss=loss,
                         temperature=cfg.train.temperature, n_fd=n_fd,
                         key=jax.random.PRNGKey(cfg.train.seed))
    worst = max((max(r["max_rel_manual_vs_autodiff"], r["max_abs_manual_vs_fd"]) for r in rows),
                default=0.0)
    return {"sizes": sizes, "loss": loss, "n": n, "rows": rows, "worst": worst}
