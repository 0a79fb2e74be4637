"""What a training program is: the static ``Spec`` (compile-time: shapes, flags, names) derived
from the configs and the data sizes, and a run's traced hyperparameters (``make_hparams``).

Runs with equal specs and argument shapes share one compiled program; everything that varies
per run or per sweep member without changing shapes is a traced hyperparameter.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import registry
from jaxmlp.config import INT32_MAX, ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.parallel import DATA
from jaxmlp.training.optim import make_optimizer, uses_momentum


class PatienceWithoutValidationWarning(UserWarning):
    """Early stopping (``patience`` > 0) with no validation split watches the training loss."""


# Training sets with more values than this (32 MB of float32) are gathered per step instead of
# per epoch: same speed on the 200,000 x 784 set (1.68 vs 1.70 s an epoch at 100,000 rows),
# without copying the whole set every epoch.
GATHER_PER_STEP_ABOVE = 8_000_000

# Steps one compiled call aims to cover; the chunk is this many steps' worth of epochs.
TARGET_STEPS_PER_CALL = 2048
MAX_CHUNK_EPOCHS = 256
# Data orders of one chunk (host and device; the next chunk's are drawn while one runs): at
# most this many bytes, unless one epoch's orders alone are larger.
ORDERS_MAX_BYTES = 256 * 2**20


class Spec(NamedTuple):
    """The static (compile-time) description of a training program. Hashable."""
    activation: str
    loss: str                 # a registry loss name ("ce", "mse", "huber", ...)
    optimizer: str
    nesterov: bool
    use_momentum: bool        # sgd with a momentum trace (per-model momentum in sweeps)
    schedule: str
    grad: str                 # "autodiff" | "manual"
    batch_size: int
    n_batches: int
    drop_last: bool
    n_train: int
    has_val: bool
    has_test: bool
    keep_best: bool
    chunk_epochs: int
    compute_dtype: str
    classification: bool      # classification data (int labels, accuracy), whatever the loss
    masked: bool              # hidden-unit masks present (sweeps with padded widths)
    per_layer_lr: bool        # per-layer learning-rate multipliers (muP)
    mesh: Any = None          # data-parallel mesh (axis "data"): batch sharded, state replicated
    use_l2: bool = True       # some model has an L2 penalty (else the term is left out)
    weighted: bool = True     # padded last batch: examples carry weights
    gather_per_step: bool = False  # large training sets: gather each batch, not each epoch
    final_in_chunk: bool = False   # fit: the final metrics come out of the training chunk
    matmul_precision: str = "default"  # TrainConfig.matmul_precision ("default": JAX's setting)
    step_log: str = ""        # fit: in-chunk loss reports, "step" or "epoch" level (``steplog``)


def precision_scope(spec: Spec):
    """Traces the spec's programs at its matmul precision (``jax.default_matmul_precision``);
    "default" leaves JAX's own setting (e.g. ``JAX_DEFAULT_MATMUL_PRECISION``) in force."""
    if spec.matmul_precision == "default":
        return contextlib.nullcontext()
    return jax.default_matmul_precision(spec.matmul_precision)


def resolve_loss(loss: str, task: str, temperature=1.0) -> str:
    """The loss a config's ``loss`` means on a data set of ``task`` ("auto": the registry's
    loss for the task); ``ConfigError`` for a loss that does not apply to the task, or a
    ``temperature`` other than 1 for a loss it has no effect on."""
    return registry.resolve_loss(loss, task, temperature)


def chunk_epochs_for(steps_per_epoch: int, epochs: int, checkpoint_every: int = 0,
                     order_bytes_per_epoch: int = 0) -> int:
    """Epochs per compiled call: about TARGET_STEPS_PER_CALL steps, capped by the checkpoint
    interval and by ``ORDERS_MAX_BYTES`` of data orders per chunk (``order_bytes_per_epoch``:
    one int32 per training row and distinct order, e.g. a sweep of 128 models with their own
    orders on 1M rows). Independent of the run length, so runs of any epoch count share one
    program (epochs past the end of a run are masked off inside the chunk)."""
    c = max(1, min(MAX_CHUNK_EPOCHS, math.ceil(TARGET_STEPS_PER_CALL / steps_per_epoch)))
    if checkpoint_every:
        c = min(c, checkpoint_every)
    if order_bytes_per_epoch:
        c = max(1, min(c, ORDERS_MAX_BYTES // order_bytes_per_epoch))
    return c


def batches_per_epoch(n_train: int, batch_size: int, drop_last: bool) -> int:
    """Optimizer steps per epoch: a padded (weighted) last batch unless ``drop_last``."""
    B = batch_size if drop_last else min(batch_size, n_train)
    return n_train // B if drop_last else math.ceil(n_train / B)


def make_spec(model: ModelConfig, train: TrainConfig, *, task: str, n_train: int, has_val: bool,
              has_test: bool, chunk_epochs: int | None = None, masked: bool = False,
              use_momentum: bool | None = None, mesh=None, use_l2: bool | None = None,
              n_features: int = 0, final_in_chunk: bool = False, n_orders: int = 1,
              step_log: str = "") -> Spec:
    """Derive the static program description from the configs and the data sizes.

    With a ``mesh`` (axis "data") the global batch ``batch_size`` is split over its devices, so
    it must be divisible by their number; results equal the one-device run up to the order of
    the gradient sum.
    """
    loss = resolve_loss(train.loss, task, train.temperature)
    B = train.batch_size
    if train.drop_last and n_train < B:
        raise ConfigError(f"batch size {B} exceeds the {n_train} training examples with drop_last")
    B = min(B, n_train) if not train.drop_last else B
    n_batches = batches_per_epoch(n_train, B, train.drop_last)
    if use_momentum is None:
        use_momentum = uses_momentum(train.optimizer, train.momentum, train.nesterov)
    if train.epochs * n_batches > INT32_MAX:
        raise ConfigError(f"{train.epochs} epochs of {n_batches} steps overflow the int32 step "
                          "counter; use fewer epochs or a larger batch size")
    if chunk_epochs is None:  # ``n_orders``: distinct data orders per epoch (a sweep's slots)
        chunk_epochs = chunk_epochs_for(n_batches, train.epochs, train.checkpoint_every,
                                        4 * n_orders * n_batches * B)
    make_optimizer(train.optimizer)  # validate the name before any compile
    if train.patience > 0 and not has_val:
        warnings.warn(f"patience={train.patience} with no validation split (val_fraction 0): "
                      "early stopping watches the training loss", PatienceWithoutValidationWarning,
                      stacklevel=3)
    if train.grad == "manual" and train.compute_dtype != "float32":
        raise ConfigError("the hand-derived backward (--grad manual) runs in float32 only; "
                          "use --grad autodiff with --compute-dtype bfloat16")
    if mesh is not None:
        n_dev = mesh.shape[DATA]
        if n_dev == 1:
            mesh = None
        elif B % n_dev:
            raise ConfigError(f"batch size {B} must be divisible by the {n_dev} devices it is split over")
    return Spec(activation=model.activation, loss=loss, optimizer=train.optimizer,
                nesterov=train.nesterov, use_momentum=bool(use_momentum), schedule=train.schedule,
                grad=train.grad, batch_size=B, n_batches=n_batches, drop_last=train.drop_last,
                n_train=n_train, has_val=has_val, has_test=has_test, keep_best=train.patience > 0,
                chunk_epochs=chunk_epochs, compute_dtype=train.compute_dtype,
                classification=task == "classification", masked=masked,
                per_layer_lr=model.parametrization == "mup", mesh=mesh,
                use_l2=train.l2 > 0 if use_l2 is None else use_l2,
                weighted=not train.drop_last and n_train % B != 0,
                gather_per_step=n_train * n_features > GATHER_PER_STEP_ABOVE,
                final_in_chunk=final_in_chunk, matmul_precision=train.matmul_precision,
                step_log=step_log or "")


def make_hparams(train: TrainConfig, spec: Spec, masks=None, layer_lr=None,
                 as_numpy: bool = False, log_every: int = 1) -> dict:
    """Traced hyperparameters of one run (float32 scalars; numpy ones with ``as_numpy``);
    with ``spec.step_log`` also ``log_every``, the steps between two in-chunk reports."""
    xp = np if as_numpy else jnp
    f = lambda v: xp.asarray(v, xp.float32)
    total = train.epochs * spec.n_batches
    hp = {"lr": f(train.lr), "temperature": f(train.temperature), "l2": f(train.l2),
          "total_steps": f(total), "warmup_steps": f(train.warmup_epochs * spec.n_batches),
          "step_every_steps": f(train.step_every * spec.n_batches),
          "step_gamma": f(train.step_gamma), "patience": xp.asarray(train.patience, xp.int32)}
    if masks is not None:
        hp["masks"] = masks
    if spec.per_layer_lr:
        hp["layer_lr"] = f(layer_lr)
    if spec.step_log:
        hp["log_every"] = xp.asarray(log_every, xp.int32)
    return hp

