"""The sweep's axes, as one table: what each grid key sets, its value type and checks, and
whether it is traced per model or changes the shape.

*Traced* axes (lr, temperature, l2, momentum, seed) set a ``TrainConfig`` field; every model
carries its own value as a traced array, so they never add a compile. *Shape* axes change the
model's layer sizes:

- ``width``: every hidden layer has this many units (default: the model's own sizes);
- ``depth``: the number of hidden layers, each ``width`` wide, where ``width`` is the grid's
  width or, without a width axis, the model's first hidden size: depth ``d`` means
  ``hidden = (width,) * d`` (default: the model's own depth).

Models of different widths share a program (padded, or packed: ``jaxmlp.sweeps.plan``);
models of different depths train in separate programs of the same sweep.

Grid expansion (``expand_grid``), the sizes of each model (``member_sizes``), each model's
training config (``train_for``) and the result rows (``row_values``) read this table; the
CLI builds its comma-list flags from ``cli_axes``.
"""
from __future__ import annotations

import itertools
import math
import numbers
from typing import Iterable, NamedTuple, Sequence

from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError


class Axis(NamedTuple):
    """One sweep axis.

    Attributes:
        name: the grid key (and the result rows' column).
        sets: the config field it sets (``ModelConfig.hidden`` through ``hidden_for``).
        type: ``int`` or ``float``: the type of its values (ints for floats are accepted).
        traced: a per-model traced value (``TrainConfig`` field ``name``); else a shape axis.
        help: one line for the CLI flag.
        cli: the sweep command has a ``--NAME`` comma-list flag for it (``seed`` has
            ``--seeds N`` instead).
    """
    name: str
    sets: str
    type: type
    traced: bool
    help: str
    cli: bool = True


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("width", "ModelConfig.hidden", int, False, "hidden widths: every hidden layer's size, e.g. 16,32,64,128"),
    Axis("depth", "ModelConfig.hidden", int, False, "numbers of hidden layers, each of the width, e.g. 1,2,3"),
    Axis("lr", "TrainConfig.lr", float, True, "learning rates"),
    Axis("temperature", "TrainConfig.temperature", float, True, "softmax temperatures T of the CE loss"),
    Axis("l2", "TrainConfig.l2", float, True, "L2 penalty strengths on weights"),
    Axis("momentum", "TrainConfig.momentum", float, True, "momenta (SGD)"),
    Axis("seed", "TrainConfig.seed", int, True, "seeds: init and data order, as fit's TrainConfig(seed=...)",
         cli=False),
)}

GRID_AXES: tuple[str, ...] = tuple(AXES)
"""The grid's keys in table order (the order of ``expand_grid``'s product: seed innermost)."""

SHAPE_AXES: tuple[str, ...] = tuple(n for n, a in AXES.items() if not a.traced)
TRACED_AXES: tuple[str, ...] = tuple(n for n, a in AXES.items() if a.traced)


def cli_axes():
    """The axes the sweep command takes as comma lists: ``(name, type, help)`` each, in table
    order. The flag is ``--NAME``; ``type`` parses each item (int axes may arrive as
    integral floats from a grid file: convert those before ``expand_grid``)."""
    for a in AXES.values():
        if a.cli:
            yield a.name, a.type, a.help


#: Bounds that keep a typo from asking for an impossible sweep: models in one grid, hidden
#: layers of a depth axis (a width's bound is ``ModelConfig``'s: int32).
MAX_MODELS = 1_000_000
MAX_DEPTH = 1024


def check_value(name: str, value):
    """``value`` of axis ``name`` as the axis's type; ``ConfigError`` naming both if it is not
    a number of that type (bools never are), or if a shape axis's value is below 1. Range
    checks of traced axes are ``TrainConfig``'s (``train_for``)."""
    axis = AXES[name]
    ok = isinstance(value, numbers.Integral if axis.type is int else numbers.Real)
    if not ok or isinstance(value, bool) or (not axis.traced and value < 1):
        kind = "positive integers" if not axis.traced else f"{axis.type.__name__}s"
        raise ConfigError(f"sweep axis {name}: values must be {kind}, got {value!r}")
    if name == "depth" and value > MAX_DEPTH:
        raise ConfigError(f"sweep axis depth: at most {MAX_DEPTH} hidden layers, got {value!r}")
    return axis.type(value)


def train_for(base: TrainConfig, member: dict) -> TrainConfig:
    """The training config of one model: ``base`` with the model's traced values (checked by
    ``TrainConfig``: a bad value is a ``ConfigError``)."""
    return base.replace(**{n: member[n] for n in TRACED_AXES})


def hidden_for(model: ModelConfig, member: dict) -> tuple[int, ...]:
    """The hidden sizes of one model: the model's own unless the member sets a width (every
    layer that wide) or a depth (that many layers, each the width: the member's, else the
    model's first hidden size). ``None`` for width or depth means the model's."""
    width, depth = member.get("width"), member.get("depth")
    if width is None and depth is None:
        return tuple(model.hidden)
    if width is None:
        width = model.hidden[0]
    return (width,) * (len(model.hidden) if depth is None else depth)


def member_sizes(model: ModelConfig, member: dict, n_features: int,
                 n_outputs: int) -> tuple[int, ...]:
    """The layer sizes ``(n_features, *hidden, n_outputs)`` of one model (``hidden_for``)."""
    return (n_features, *hidden_for(model, member), n_outputs)


def row_values(model: ModelConfig, member: dict) -> dict:
    """The axis columns of one model's result row: every axis in table order, width and depth
    as trained (width ``None`` for a model of unequal hidden sizes)."""
    hidden = hidden_for(model, member)
    row = {n: member[n] for n in GRID_AXES}
    row["width"] = hidden[0] if hidden and len(set(hidden)) == 1 else None
    row["depth"] = len(hidden)
    return row


def _values(grid: dict, seeds, base: TrainConfig, model: ModelConfig) -> dict[str, list]:
    """Per axis the checked values: the grid's, else the base config's (shape axes: ``None``,
    the model's own); seeds from ``seeds`` unless the grid has a seed axis."""
    unknown = sorted(set(grid) - set(GRID_AXES))
    if unknown:
        raise ConfigError(f"unknown sweep axis {', '.join(unknown)}; use {', '.join(GRID_AXES)}")
    if isinstance(seeds, int) and seeds > MAX_MODELS:
        raise ConfigError(f"at most {MAX_MODELS} seeds (models) in a sweep, got {seeds}")
    default_seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    values = {}
    for name, axis in AXES.items():
        given = grid.get(name, default_seeds if name == "seed" else None)
        if given is None:
            values[name] = [getattr(base, name)] if axis.traced else [None]
            continue
        if isinstance(given, (str, bytes, dict)) or not isinstance(given, Iterable):
            raise ConfigError(f"sweep axis {name} must be a list of values, got {given!r}")
        given = list(given)
        if not given:
            raise ConfigError(f"sweep axis {name} is empty" if name != "seed"
                              else "a sweep needs at least one seed")
        values[name] = [check_value(name, v) for v in given]
        _check_unique(name, values[name])
    if values["width"] != [None] and values["depth"] == [None] and not model.hidden:
        raise ConfigError("a width sweep needs a model with hidden layers (--hidden) or a "
                          "depth axis")
    if values["depth"] != [None] and values["width"] == [None] and not model.hidden:
        raise ConfigError("a depth sweep needs a width: a model with hidden layers (--hidden) "
                          "or a width axis")
    return values


def _check_unique(name: str, values: list) -> None:
    """``ConfigError`` naming the first value listed twice on axis ``name`` (0.1 and 0.10 are
    one value): its models would be trained twice, under one row label."""
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"sweep axis {name} lists {v!r} more than once: its models "
                              "would be trained twice (under one row label)")
        seen.add(v)


def expand_grid(grid: dict[str, Sequence], seeds: int | Sequence[int] = 1,
                base: TrainConfig | None = None, model: ModelConfig | None = None) -> list[dict]:
    """The Cartesian product of ``grid``'s axes (``GRID_AXES``, table order, seed innermost)
    and the seeds, as one dict per model, every axis a key: traced axes not in the grid take
    ``base``'s value, width and depth ``None`` (the model's own, ``hidden_for``). Every value
    is checked (``check_value``, ``train_for``): a bad one is a ``ConfigError`` naming it."""
    base = base or TrainConfig()
    model = model or ModelConfig()
    values = _values(grid, seeds, base, model)
    n_models = math.prod(len(v) for v in values.values())
    if n_models > MAX_MODELS:
        raise ConfigError(f"the grid has {n_models} models; a sweep takes at most {MAX_MODELS}")
    for name in TRACED_AXES:   # each value checked once, by the config it sets
        for v in values[name]:
            _checked(name, v, lambda: base.replace(**{name: v}))
    for width, depth in itertools.product(values["width"], values["depth"]):
        shape = {"width": width, "depth": depth}
        name = "width" if width is not None else "depth"   # the only checks left: sizes
        _checked(name, shape[name], lambda: model.replace(hidden=hidden_for(model, shape)))
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


def _checked(name: str, value, make) -> None:
    """``make()``, its ``ConfigError`` prefixed with the axis and value that caused it."""
    try:
        make()
    except ConfigError as e:
        raise ConfigError(f"sweep axis {name} value {value!r}: {e}") from None
