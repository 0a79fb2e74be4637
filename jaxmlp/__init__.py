"""jaxmlp: a JIT-compiled MLP trainer on JAX + Optax.

Public API (see README): pure MLP functions, losses, gradients, the compiled training loop,
data sets, configs and checkpoints.

The names below are loaded on first use (PEP 562), so ``import jaxmlp`` and the ``jaxmlp``
command start without importing JAX (0.7-2 s) until something needs it: ``jaxmlp --help``
answers at once, and a command can start its figure worker before JAX loads.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module defining it
_EXPORTS = {
    **dict.fromkeys(["use_compile_cache"], "compile_cache"),
    **dict.fromkeys(["DataConfig", "ModelConfig", "RunConfig", "TrainConfig"], "config"),
    **dict.fromkeys(["Dataset", "Splits", "load_dataset", "load_splits", "make_splits",
                     "validate_arrays"], "data"),
    **dict.fromkeys(["CheckpointError", "ConfigError", "DataError", "DivergenceError",
                     "JaxmlpError"], "errors"),
    **dict.fromkeys(["batch_loss", "per_example_grad_norms", "per_example_grads",
                     "value_and_grad"], "grads"),
    **dict.fromkeys(["accuracy", "cross_entropy", "cross_entropy_bits",
                     "cross_entropy_per_example", "distillation_loss", "entropy", "entropy_bits",
                     "entropy_from_logits", "kl_divergence", "log_softmax", "mse",
                     "mse_per_example", "softmax"], "losses"),
    **dict.fromkeys(["forward", "init_mlp", "layer_sizes"], "nn"),
    **dict.fromkeys(["evaluate", "fit", "predict", "trace_count"], "train"),
    **dict.fromkeys(["SweepResult"], "sweep"),
}

__all__ = [*_EXPORTS, "sweep", "__version__"]


def __getattr__(name: str):
    """Load a public name (or a submodule, ``jaxmlp.nn`` &c.) on first access."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``jaxmlp.sweep`` is the function ``jaxmlp.sweep.sweep``, also after the module of the
    same name is imported (the import system then assigns the module to the package
    attribute; this property keeps the function, as the eager ``from .sweep import sweep``
    of earlier versions did). ``from jaxmlp.sweep import ...`` still reaches the module."""

    @property
    def sweep(self):
        return importlib.import_module(".sweep", __name__).sweep

    @sweep.setter
    def sweep(self, _module) -> None:
        pass


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from .compile_cache import use_compile_cache  # noqa: F401
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: F401
    from .data import (Dataset, Splits, load_dataset, load_splits, make_splits,  # noqa: F401
                       validate_arrays)
    from .errors import (CheckpointError, ConfigError, DataError, DivergenceError,  # noqa: F401
                         JaxmlpError)
    from .grads import (batch_loss, per_example_grad_norms, per_example_grads,  # noqa: F401
                        value_and_grad)
    from .losses import (accuracy, cross_entropy, cross_entropy_bits,  # noqa: F401
                         cross_entropy_per_example, distillation_loss, entropy, entropy_bits,
                         entropy_from_logits, kl_divergence, log_softmax, mse, mse_per_example,
                         softmax)
    from .nn import forward, init_mlp, layer_sizes  # noqa: F401
    from .sweep import SweepResult, sweep  # noqa: F401
    from .train import evaluate, fit, predict, trace_count  # noqa: F401
