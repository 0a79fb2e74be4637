"""jaxmlp: a JIT-compiled MLP trainer on JAX + Optax.

Public API (see README): pure MLP functions, losses, gradients, the compiled training loop,
data sets, configs and checkpoints.
"""
from .compile_cache import use_compile_cache
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .data import Dataset, Splits, load_dataset, load_splits, make_splits, validate_arrays
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, JaxmlpError
from .grads import batch_loss, per_example_grad_norms, per_example_grads, value_and_grad
from .losses import (accuracy, cross_entropy, cross_entropy_bits, cross_entropy_per_example,
                     distillation_loss, entropy, entropy_bits, entropy_from_logits, kl_divergence,
                     log_softmax, mse, mse_per_example, softmax)
from .nn import forward, init_mlp, layer_sizes
from .train import evaluate, fit, predict, trace_count
from .sweep import SweepResult, sweep  # noqa: E402  (the function; the module stays importable)

__version__ = "0.1.0"

__all__ = [
    "DataConfig", "ModelConfig", "RunConfig", "TrainConfig",
    "Dataset", "Splits", "load_dataset", "load_splits", "make_splits", "validate_arrays",
    "CheckpointError", "ConfigError", "DataError", "DivergenceError", "JaxmlpError",
    "batch_loss", "per_example_grad_norms", "per_example_grads", "value_and_grad",
    "accuracy", "cross_entropy", "cross_entropy_bits", "cross_entropy_per_example",
    "distillation_loss", "entropy", "entropy_bits", "entropy_from_logits", "kl_divergence",
    "log_softmax", "mse", "mse_per_example", "softmax",
    "forward", "init_mlp", "layer_sizes",
    "evaluate", "fit", "predict", "trace_count", "sweep", "SweepResult", "use_compile_cache",
    "__version__",
]
