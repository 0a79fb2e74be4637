"""Typed, frozen configuration: data, model and training. Bad values are rejected on creation.

Every run saves these as JSON next to its metrics and inside its checkpoints; ``from_dict``
rejects unknown keys so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from jaxmlp.errors import ConfigError
from jaxmlp.registry import activation_names, loss_names

SCHEDULE_NAMES = ("constant", "cosine", "step", "warmup_cosine")
GRAD_NAMES = ("autodiff", "manual")
COMPUTE_DTYPES = ("float32", "bfloat16")
PACKING_NAMES = ("auto", "pad", "pack")   # sweeps: how widths share a program (jaxmlp.sweeps.plan)


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


#: Largest value of integer settings that end up in int32 device arrays (steps, epochs, ...).
INT32_MAX = 2**31 - 1


def _choice(name: str, value, choices) -> None:
    _check(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")


class _Base:
    """Shared dict round-trip with unknown-key rejection."""

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
    dataset: str = "digits"
    target: str | None = None
    task: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    n_samples: int | None = None
    noise: float | None = None
    standardize: bool = True

    def __post_init__(self):
        _check(isinstance(self.dataset, str) and self.dataset != "", "dataset must be a non-empty string")
        _check(self.target is None or isinstance(self.target, str), "target must be a column name")
        _choice("task", self.task, ("auto", "classification", "regression"))
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            _check(_is_num(v) and 0.0 <= v < 1.0, f"{name} must be in [0, 1), got {v!r}")
        _check(self.val_fraction + self.test_fraction < 1.0,
               "val_fraction + test_fraction must be below 1")
        _check(_is_int(self.split_seed), f"split_seed must be an integer, got {self.split_seed!r}")
        _check(self.n_samples is None or (_is_int(self.n_samples) and self.n_samples >= 1),
               f"n_samples must be a positive integer, got {self.n_samples!r}")
        _check(self.noise is None or (_is_num(self.noise) and self.noise >= 0),
               f"noise must be a non-negative number, got {self.noise!r}")
        _check(isinstance(self.standardize, bool), "standardize must be true or false")


@dataclass(frozen=True)
class ModelConfig(_Base):
    """MLP shape: hidden widths (input and output sizes come from the data), activation, init.

    ``parametrization`` is "sp" (standard) or "mup" (maximal update parametrisation, with
    ``base_width`` the width at which both coincide): see ``jaxmlp.nn.mup_multipliers``.
    """
    hidden: tuple[int, ...] = (128,)
    activation: str = "tanh"
    init: str = "auto"
    parametrization: str = "sp"
    base_width: int = 64

    def __post_init__(self):
        _check(isinstance(self.hidden, tuple)
               and all(_is_int(h) and 1 <= h <= INT32_MAX for h in self.hidden),
               f"hidden sizes must be positive integers, got {self.hidden!r}")
        _choice("activation", self.activation, activation_names())
        _choice("init", self.init, ("auto", "lecun", "glorot", "he"))
        _choice("parametrization", self.parametrization, ("sp", "mup"))
        _check(_is_int(self.base_width) and self.base_width >= 1, "base_width must be >= 1")


@dataclass(frozen=True)
class TrainConfig(_Base):
    """Optimisation settings.

    ``optimizer`` is "sgd" (with optional ``momentum`` / ``nesterov``), "momentum" (SGD with
    momentum 0.9 unless given) or any optax optimizer name taking a learning rate ("adam",
    "adamw", "rmsprop", "adagrad", ...). ``l2`` adds ``l2 * W`` to the weight gradients (an L2
    penalty ``l2/2 ||W||^2`` on weights, not biases). ``patience`` > 0 enables early stopping on
    the validation loss with best-params restore. ``checkpoint_every`` (epochs) sets how often a
    run folder's checkpoint is refreshed; 0 means only at the end.
    """
    loss: str = "auto"
    temperature: float = 1.0
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    l2: float = 0.0
    schedule: str = "constant"
    warmup_epochs: int = 0
    step_every: int = 30
    step_gamma: float = 0.1
    batch_size: int = 128
    epochs: int = 50
    seed: int = 0
    patience: int = 0
    grad: str = "autodiff"
    drop_last: bool = False
    compute_dtype: str = "float32"
    checkpoint_every: int = 0

    def __post_init__(self):
        _choice("loss", self.loss, loss_names())
        _check(_is_num(self.temperature) and self.temperature > 0,
               f"temperature must be > 0, got {self.temperature!r}")
        _check(isinstance(self.optimizer, str) and self.optimizer != "", "optimizer must be a name")
        _check(_is_num(self.lr) and self.lr > 0, f"learning rate must be > 0, got {self.lr!r}")
        _check(_is_num(self.momentum) and 0 <= self.momentum < 1,
               f"momentum must be in [0, 1), got {self.momentum!r}")
        _check(isinstance(self.nesterov, bool), "nesterov must be true or false")
        _check(_is_num(self.l2) and self.l2 >= 0, f"l2 must be >= 0, got {self.l2!r}")
        _choice("schedule", self.schedule, SCHEDULE_NAMES)
        _check(_is_int(self.warmup_epochs) and 0 <= self.warmup_epochs <= INT32_MAX,
               f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}")
        _check(_is_int(self.step_every) and 1 <= self.step_every <= INT32_MAX,
               f"step_every must be >= 1, got {self.step_every!r}")
        _check(_is_num(self.step_gamma) and self.step_gamma > 0, "step_gamma must be > 0")
        _check(_is_int(self.batch_size) and self.batch_size >= 1,
               f"batch size must be >= 1, got {self.batch_size!r}")
        _check(_is_int(self.epochs) and 1 <= self.epochs <= INT32_MAX,
               f"epochs must be >= 1 (and below 2**31), got {self.epochs!r}")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**32,
               f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        _check(_is_int(self.patience) and 0 <= self.patience <= INT32_MAX,
               f"patience must be >= 0 (and below 2**31), got {self.patience!r}")
        _choice("grad", self.grad, GRAD_NAMES)
        _check(isinstance(self.drop_last, bool), "drop_last must be true or false")
        _choice("compute_dtype", self.compute_dtype, COMPUTE_DTYPES)
        _check(_is_int(self.checkpoint_every) and 0 <= self.checkpoint_every <= INT32_MAX,
               f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")


@dataclass(frozen=True)
class RunConfig(_Base):
    """Everything a run needs; saved as config.json and inside checkpoints."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(),
                "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict):
            raise ConfigError("run config must be a mapping")
        unknown = sorted(map(repr, set(d) - {"data", "model", "train"}))
        if unknown:
            raise ConfigError(f"unknown RunConfig key(s): {', '.join(unknown)}")
        return cls(data=DataConfig.from_dict(d.get("data", {})),
                   model=ModelConfig.from_dict(d.get("model", {})),
                   train=TrainConfig.from_dict(d.get("train", {})))
