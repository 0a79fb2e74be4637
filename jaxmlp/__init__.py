"""jaxmlp: a JIT-compiled MLP trainer on JAX + Optax.

Public API (see README): pure MLP functions, losses, gradients, the compiled training loop,
data sets, configs and checkpoints.

The names below are loaded on first use (PEP 562), so ``import jaxmlp`` and the ``jaxmlp``
command start without importing JAX (0.7-2 s) until something needs it: ``jaxmlp --help``
answers at once, and a command can start its figure worker before JAX loads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from jaxmlp.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module defining it
_EXPORTS = {
    **dict.fromkeys(["use_compile_cache"], "training.compile_cache"),
    **dict.fromkeys(["clear_caches"], "training.memo"),
    **dict.fromkeys(["expected_calibration_error", "fit_temperature", "reliability_bins"],
                    "calibration"),
    **dict.fromkeys(["DataConfig", "ModelConfig", "RunConfig", "TrainConfig"], "config"),
    **dict.fromkeys(["Dataset", "Splits", "load_dataset", "load_splits", "make_splits",
                     "validate_arrays"], "data"),
    **dict.fromkeys(["CheckpointError", "ConfigError", "DataError", "DivergenceError",
                     "JaxmlpError"], "errors"),
    **dict.fromkeys(["batch_loss", "loss_and_grad", "per_example_grad_norms", "per_example_grads",
                     "value_and_grad"], "objective"),
    **dict.fromkeys(["accuracy", "cross_entropy", "cross_entropy_bits",
                     "cross_entropy_per_example", "distillation_loss", "entropy", "entropy_bits",
                     "entropy_from_logits", "kl_divergence", "log_softmax", "mse",
                     "mse_per_example", "softmax"], "losses"),
    **dict.fromkeys(["forward", "init_mlp", "layer_sizes"], "nn"),
    **dict.fromkeys(["evaluate", "fit", "predict", "trace_count"], "training"),
    **dict.fromkeys(["SweepResult", "sweep"], "sweeps.api"),
}

__all__ = [*_EXPORTS, "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from .training.compile_cache import use_compile_cache  # noqa: F401
    from .training.memo import clear_caches  # noqa: F401
    from .calibration import (expected_calibration_error, fit_temperature,  # noqa: F401
                              reliability_bins)
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: F401
    from .data import (Dataset, Splits, load_dataset, load_splits, make_splits,  # noqa: F401
                       validate_arrays)
    from .errors import (CheckpointError, ConfigError, DataError, DivergenceError,  # noqa: F401
                         JaxmlpError)
    from .objective import (batch_loss, loss_and_grad, per_example_grad_norms,  # noqa: F401
                            per_example_grads, value_and_grad)
    from .losses import (accuracy, cross_entropy, cross_entropy_bits,  # noqa: F401
                         cross_entropy_per_example, distillation_loss, entropy, entropy_bits,
                         entropy_from_logits, kl_divergence, log_softmax, mse, mse_per_example,
                         softmax)
    from .nn import forward, init_mlp, layer_sizes  # noqa: F401
    from .sweeps.api import SweepResult, sweep  # noqa: F401
    from .training import evaluate, fit, predict, trace_count  # noqa: F401
