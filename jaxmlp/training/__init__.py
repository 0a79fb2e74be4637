"""Training: an Optax step inside a whole-run compiled program, and ``fit``.

The package's modules, each with one job, in the order data flows through them:

- ``optim``: the update rule (``optax.chain``: L2, the optimizer by name, muP per-layer
  learning rates), the momentum a config means, learning-rate schedules.
- ``spec``: the static ``Spec`` of a program and a run's traced hyperparameters.
- ``init``: layer sizes, initialisation key, initial params and train state.
- ``metrics``: the loss a spec means; loss and accuracy/MSE of params on a split.
- ``program``: the maths of a step, an epoch and a chunk of epochs; the data order.
- ``placement``: splits and host arrays placed on the devices as program inputs.
- ``compile``: compiler options, ``fast_jit``, the jitted chunk and its compiled executable.
- ``inputs``: raw arrays accepted as data (``as_splits``).
- ``fitting``: ``prepare``, ``train_loop``, ``summarize``, ``fit``, ``predict``.
- ``aot_cache`` / ``compile_cache``: jaxmlp's executables on disk; JAX's persistent cache.

The names below are this package's interface (``from jaxmlp.training import ...``).
"""
from jaxmlp.training.optim import (effective_momentum, make_optimizer, optimizer_for,
                                   schedule_factor, uses_momentum)
from jaxmlp.training.spec import (GATHER_PER_STEP_ABOVE, MAX_CHUNK_EPOCHS, TARGET_STEPS_PER_CALL,
                                  Spec, batches_per_epoch, chunk_epochs_for, make_hparams,
                                  make_spec, resolve_loss)
from jaxmlp.training.init import (init_key, init_model, init_multipliers, init_state,
                                  layer_lr_multipliers, model_sizes)
from jaxmlp.training.metrics import evaluate, loss_kwargs, split_metrics
from jaxmlp.training.program import (OrdersAhead, best_params, chunk_orders, data_order,
                                     end_epoch, guard_epoch, on_models, run_chunk, run_epoch,
                                     trace_count, train_step)
from jaxmlp.training.placement import device_data, host_input, models_input
from jaxmlp.training.compile import (CPU_COMPILER_OPTIONS, CPU_ONCE_OPTIONS,
                                     CPU_SHORT_RUN_OPTIONS, SHORT_RUN_FLOPS, chunk_executable,
                                     compiler_options, compiles_short, fast_jit, jit_chunk,
                                     signature, split_metrics_jit)
from jaxmlp.training.inputs import ArraySplits, as_splits, n_rows
from jaxmlp.training.fitting import (FINAL_IN_CHUNK_MACS, Run, divergence_message, final_metrics,
                                     fit, predict, prepare, summarize, train_loop)

# The public functions say where users find them (``jaxmlp.fit`` &c. re-export them).
for _f in (evaluate, fit, predict, trace_count):
    _f.__module__ = __name__
del _f

__all__ = [
    "effective_momentum", "make_optimizer", "optimizer_for", "schedule_factor", "uses_momentum",
    "GATHER_PER_STEP_ABOVE", "MAX_CHUNK_EPOCHS", "TARGET_STEPS_PER_CALL", "Spec",
    "batches_per_epoch", "chunk_epochs_for", "make_hparams", "make_spec", "resolve_loss",
    "init_key", "init_model", "init_multipliers", "init_state", "layer_lr_multipliers",
    "model_sizes", "evaluate", "loss_kwargs", "split_metrics", "best_params", "OrdersAhead",
    "chunk_orders",
    "data_order", "end_epoch", "guard_epoch", "on_models", "run_chunk", "run_epoch",
    "trace_count", "train_step", "device_data", "host_input", "models_input",
    "CPU_COMPILER_OPTIONS", "CPU_ONCE_OPTIONS", "CPU_SHORT_RUN_OPTIONS", "SHORT_RUN_FLOPS",
    "chunk_executable", "compiler_options", "compiles_short", "fast_jit", "jit_chunk",
    "signature", "split_metrics_jit",
    "ArraySplits", "as_splits", "n_rows", "FINAL_IN_CHUNK_MACS", "Run", "divergence_message",
    "final_metrics", "fit", "predict", "prepare", "summarize", "train_loop",
]
