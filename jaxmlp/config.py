"""Typed, frozen configuration: data, model and training. Bad values are rejected on creation.

Each field's default, type (its annotation), choices and help text live here, once: the field's
``metadata`` holds ``help`` and, for a closed set of names, ``choices`` (a tuple, or a function
returning one, called at each use: the activation and loss names come from ``jaxmlp.registry``,
so names added there are valid everywhere); ``cli=False`` keeps a field off the command line.
``jaxmlp.cli_flags`` generates the flags from them (``--batch-size`` for ``batch_size``) and
validation below checks the same choices.

Every run saves these as JSON next to its metrics and inside its checkpoints; ``from_dict``
rejects unknown keys so a typo never silently falls back to a default. Importing this module
does not import JAX (``jaxmlp --help`` reads it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from jaxmlp.errors import ConfigError
import jaxmlp.registry as registry

TASK_NAMES = ("auto", "classification", "regression")
PARAMETRIZATION_NAMES = ("sp", "mup")
SCHEDULE_NAMES = ("constant", "cosine", "step", "warmup_cosine")
GRAD_NAMES = ("autodiff", "manual")
COMPUTE_DTYPES = ("float32", "bfloat16")
#: ``jax.default_matmul_precision`` values: "default" leaves the backend's own (on Ampere+ GPUs
#: float32 matmuls then run in TF32, on TPUs in one bfloat16 pass; CPUs compute float32 always).
MATMUL_PRECISIONS = ("default", "high", "highest")
PACKING_NAMES = ("auto", "pad", "pack")   # sweeps: how widths share a program (jaxmlp.sweeps.plan)

#: Largest value of integer settings that end up in int32 device arrays (steps, epochs, ...).
INT32_MAX = 2**31 - 1
#: The range of a float32 (the dtype of the traced hyperparameters): a value outside it would
#: silently become inf, or 0 for a positive one below the smallest normal float32.
F32_MAX = 3.4028234663852886e38
F32_TINY = 1.1754943508222875e-38


def setting(default, help: str, *, choices: tuple | Callable[[], tuple] | None = None,
            cli: bool = True):
    """A config field with its help text and (optional) choices in ``metadata``."""
    meta = {"help": help, "cli": cli}
    if choices is not None:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> tuple | None:
    """The valid values of a field with ``choices`` metadata (read now: registries grow)."""
    c = f.metadata.get("choices")
    return tuple(c()) if callable(c) else c


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _check_f32(obj, name: str, msg: str, *, zero: bool = False) -> None:
    """A positive float setting (``zero``: or 0) that a float32 holds as it is."""
    v = getattr(obj, name)
    ok = _is_num(v) and ((zero and v == 0) or F32_TINY <= v <= F32_MAX)
    _check(ok, f"{msg}, got {v!r}" if not (_is_num(v) and v > 0)
           else f"{msg} and within float32's range [{F32_TINY:.4g}, {F32_MAX:.4g}], got {v!r}")


def _check_int(obj, name: str, lo: int, msg: str) -> None:
    v = getattr(obj, name)
    _check(_is_int(v) and lo <= v <= INT32_MAX, f"{msg}, got {v!r}")


class _Base:
    """Shared dict round-trip with unknown-key rejection, and the choices check."""

    def _check_choices(self) -> None:
        for f in fields(self):
            choices = choices_of(f)
            value = getattr(self, f.name)
            if choices is not None and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} expects a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(repr, set(d) - known))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} key(s): {', '.join(unknown)}")
        kwargs = dict(d)
        for f in fields(cls):
            if f.name in kwargs and isinstance(kwargs[f.name], list):
                kwargs[f.name] = tuple(kwargs[f.name])
        return cls(**kwargs)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataConfig(_Base):
    """Which data set and how to split it.

    ``dataset`` is a registered name (see ``jaxmlp.data.DATASETS``) or a path to a .csv/.npz
    file. ``target`` names the CSV target column (default: the last). ``task`` forces
    "classification" or "regression" for user files ("auto" infers it). ``n_samples`` and
    ``noise`` size the synthetic sets.
    """
    dataset: str = setting("digits", "built-in name ({datasets}) or a .csv/.npz file")
    target: str | None = setting(None, "CSV target column (default: the last)")
    task: str = setting("auto", "the task of a user file (auto: inferred from its labels)",
                        choices=TASK_NAMES)
    val_fraction: float = setting(0.1, "fraction of the rows held out for validation")
    test_fraction: float = setting(0.2, "fraction of the rows held out for testing")
    split_seed: int = setting(0, "seed of the train/validation/test split")
    n_samples: int | None = setting(None, "size of a synthetic data set")
    noise: float | None = setting(None, "noise of a synthetic data set")
    standardize: bool = setting(True, "standardize the features (and regression targets) with "
                                "the training split's mean and std", cli=False)

    def __post_init__(self):
        _check(isinstance(self.dataset, str) and self.dataset != "", "dataset must be a non-empty string")
        _check(self.target is None or isinstance(self.target, str), "target must be a column name")
        self._check_choices()
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            _check(_is_num(v) and 0.0 <= v < 1.0, f"{name} must be in [0, 1), got {v!r}")
        _check(self.val_fraction + self.test_fraction < 1.0,
               "val_fraction + test_fraction must be below 1")
        _check(_is_int(self.split_seed), f"split_seed must be an integer, got {self.split_seed!r}")
        _check(self.n_samples is None or (_is_int(self.n_samples) and 1 <= self.n_samples <= INT32_MAX),
               f"n_samples must be a positive integer below 2**31, got {self.n_samples!r}")
        _check(self.noise is None or (_is_num(self.noise) and self.noise >= 0),
               f"noise must be a non-negative number, got {self.noise!r}")
        _check(isinstance(self.standardize, bool), "standardize must be true or false")


@dataclass(frozen=True)
class ModelConfig(_Base):
    """MLP shape: hidden widths (input and output sizes come from the data), activation, init.

    ``parametrization`` is "sp" (standard) or "mup" (maximal update parametrisation, with
    ``base_width`` the width at which both coincide): see ``jaxmlp.nn.mup_multipliers``.
    """
    hidden: tuple[int, ...] = setting((128,), "hidden widths, comma-separated ('none' for no "
                                      "hidden layer)")
    activation: str = setting("tanh", "hidden-layer activation",
                              choices=lambda: registry.activation_names())
    init: str = setting("auto", "weight initialisation (auto: the activation's own)",
                        choices=lambda: registry.init_names())
    parametrization: str = setting("sp", "standard, or maximal update parametrisation (muP) "
                                   "relative to --base-width", choices=PARAMETRIZATION_NAMES)
    base_width: int = setting(64, "muP base width")

    def __post_init__(self):
        _check(isinstance(self.hidden, tuple)
               and all(_is_int(h) and 1 <= h <= INT32_MAX for h in self.hidden),
               f"hidden sizes must be positive integers, got {self.hidden!r}")
        self._check_choices()
        _check_int(self, "base_width", 1, "base_width must be >= 1 (and below 2**31)")


@dataclass(frozen=True)
class TrainConfig(_Base):
    """Optimisation settings.

    ``optimizer`` is "sgd" (with optional ``momentum`` / ``nesterov``), "momentum" (SGD with
    momentum 0.9 unless given) or any optax optimizer name taking a learning rate ("adam",
    "adamw", "rmsprop", "adagrad", ...). ``l2`` adds ``l2 * W`` to the weight gradients (an L2
    penalty ``l2/2 ||W||^2`` on weights, not biases). ``patience`` > 0 enables early stopping on
    the validation loss with best-params restore. ``checkpoint_every`` (epochs) sets how often a
    run folder's checkpoint is refreshed; 0 means only at the end (and on SIGINT/SIGTERM).
    """
    loss: str = setting("auto", "loss (auto: ce for classification, mse for regression)",
                        choices=lambda: registry.loss_names())
    temperature: float = setting(1.0, "softmax temperature T of the CE loss")
    optimizer: str = setting("sgd", "sgd, momentum, nesterov, or any optax optimizer name "
                             "(adam, adamw, ...)")
    lr: float = setting(0.1, "learning rate")
    momentum: float = setting(0.0, "momentum")
    nesterov: bool = setting(False, "Nesterov momentum")
    l2: float = setting(0.0, "L2 penalty strength on weights")
    schedule: str = setting("constant", "learning-rate schedule", choices=SCHEDULE_NAMES)
    warmup_epochs: int = setting(0, "epochs of linear warm-up (warmup_cosine schedule)")
    step_every: int = setting(30, "epochs between lr drops (step schedule)")
    step_gamma: float = setting(0.1, "lr factor at each drop (step schedule)")
    batch_size: int = setting(128, "mini-batch size (1 = per example)")
    epochs: int = setting(50, "training epochs")
    seed: int = setting(0, "seed of the initialisation and the data order")
    patience: int = setting(0, "early-stopping patience in epochs (0 = off)")
    grad: str = setting("autodiff", "jax.grad or the hand-derived backward", choices=GRAD_NAMES)
    drop_last: bool = setting(False, "drop the last partial batch")
    compute_dtype: str = setting("float32", "dtype of the matmuls", choices=COMPUTE_DTYPES)
    matmul_precision: str = setting("default", "float32 matmul precision on GPU/TPU (default: "
                                    "the backend's, TF32 / one bfloat16 pass; highest: float32)",
                                    choices=MATMUL_PRECISIONS)
    checkpoint_every: int = setting(0, "epochs between checkpoints (0: at the end and on "
                                    "SIGINT/SIGTERM only)")

    def __post_init__(self):
        self._check_choices()
        _check_f32(self, "temperature", "temperature must be > 0")
        _check(isinstance(self.optimizer, str) and self.optimizer != "", "optimizer must be a name")
        _check_f32(self, "lr", "learning rate must be > 0")
        _check(_is_num(self.momentum) and 0 <= self.momentum < 1,
               f"momentum must be in [0, 1), got {self.momentum!r}")
        _check(isinstance(self.nesterov, bool), "nesterov must be true or false")
        _check_f32(self, "l2", "l2 must be >= 0", zero=True)
        _check_int(self, "warmup_epochs", 0, "warmup_epochs must be >= 0")
        _check_int(self, "step_every", 1, "step_every must be >= 1")
        _check_f32(self, "step_gamma", "step_gamma must be > 0")
        _check_int(self, "batch_size", 1, "batch size must be >= 1 (and below 2**31)")
        _check_int(self, "epochs", 1, "epochs must be >= 1 (and below 2**31)")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**32,
               f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        _check_int(self, "patience", 0, "patience must be >= 0 (and below 2**31)")
        _check(isinstance(self.drop_last, bool), "drop_last must be true or false")
        _check_int(self, "checkpoint_every", 0, "checkpoint_every must be >= 0")


@dataclass(frozen=True)
class RunConfig(_Base):
    """Everything a run needs; saved as config.json and inside checkpoints."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict):
            raise ConfigError("run config must be a mapping")
        unknown = sorted(map(repr, set(d) - set(SECTIONS)))
        if unknown:
            raise ConfigError(f"unknown RunConfig key(s): {', '.join(unknown)}")
        return cls(**{name: sec.from_dict(d.get(name, {})) for name, sec in SECTIONS.items()})


#: The sections of a RunConfig by field name (a setting's name is unique across them).
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
