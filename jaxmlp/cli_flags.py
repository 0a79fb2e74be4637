"""What each ``jaxmlp`` command accepts: its argparse flags, most generated from the config
dataclasses (``jaxmlp.config``: each field's default, type, choices and help live there), and
the parsed flags turned back into a ``RunConfig`` (``config_from_args``) or a sweep grid
(``grid_from_args``). What the commands do with them is ``jaxmlp.cli``.

Importing this module imports neither JAX nor the config (the parser is built on demand).
"""
from __future__ import annotations

import argparse
import dataclasses
import math


# --------------------------------------------------------------------------- value parsers
def _comma_list(typ):
    """An argparse type: a comma list of ``typ`` values (a sweep axis; hidden sizes)."""
    def parse(text: str) -> tuple:
        try:
            return tuple(typ(v) for v in text.split(","))
        except ValueError:
            kind = "integers" if typ is int else "numbers"
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind}, got {text!r}") from None
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    """Hidden sizes: a comma list of integers, or 'none' for no hidden layer."""
    text = text.strip()
    if text == "":
        raise argparse.ArgumentTypeError("empty hidden sizes; give widths like 128,64 (or 'none' "
                                         "for a model without hidden layers)")
    if text.lower() == "none":
        return ()
    return _comma_list(int)(text)


def _int_at_least(text: str, lo: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < lo:
        raise argparse.ArgumentTypeError(f"must be >= {lo}, got {n}")
    return n


def _device_ids(text: str) -> tuple[int, ...]:
    """Device ids: a comma list of distinct integers >= 0."""
    ids = _comma_list(int)(text)
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"device ids must be distinct integers >= 0, got {text!r}")
    return ids


def _log_every(text: str):
    """``--log-every``: a number of steps >= 1, "auto" or "off"."""
    return text if text in ("auto", "off") else _int_at_least(text, 1)


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _number(lo: float, *, above: bool, hi: float | None = None):
    """An argparse type: a finite number ``> lo`` (``above``) or ``>= lo``, at most ``hi``
    (nan, inf and words are rejected with the flag's name)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if v < lo or (above and v == lo) or (hi is not None and v > hi):
            bound = f"> {lo:g}" if above else f">= {lo:g}"
            raise argparse.ArgumentTypeError(
                f"must be {bound}{f' and <= {hi:g}' if hi is not None else ''}, got {text!r}")
        return v
    return parse


def _devices(text: str):
    """A device count (>= 1) or "auto"."""
    return "auto" if text == "auto" else _positive_int(text)


#: Largest --peer-timeout (seconds, one week): the heartbeat timeout derived from it is an
#: integer number of seconds in jax.distributed.
PEER_TIMEOUT_MAX = 7 * 24 * 3600.0


# --------------------------------------------------------------------------- flags from the config
#: How a config field's type (its annotation) is read from the command line ("| None" dropped;
#: bool fields are switches).
FLAG_PARSERS = {"str": str, "int": int, "float": float, "tuple[int, ...]": _int_list}


def flag_name(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


def cli_fields(cls) -> list[dataclasses.Field]:
    """The fields of a config section that have a flag."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli")]


def _default_text(v) -> str:
    if v is None or isinstance(v, bool):
        return ""
    if isinstance(v, tuple):
        v = ",".join(map(str, v)) or "none"
    return f" (default: {v})"


def _help(f: dataclasses.Field) -> str:
    """A field's help; ``{datasets}`` lists the built-in data sets (``jaxmlp.data.catalog``)."""
    text = f.metadata["help"]
    if "{datasets}" in text:
        from jaxmlp.data.catalog import NAMES  # the one table of data set names (no numpy)
        text = text.replace("{datasets}", ", ".join(NAMES))
    return text


def add_config_flags(p, cls, title: str, *, only=None, skip=(), defaults=None) -> None:
    """One flag per field of config section ``cls`` (``only`` those named, none in ``skip``),
    with the field's default (or one from ``defaults``), type, choices and help."""
    from jaxmlp.config import choices_of
    g = p.add_argument_group(title)
    defaults = defaults or {}
    for f in cli_fields(cls):
        if (only is not None and f.name not in only) or f.name in skip:
            continue
        default = defaults.get(f.name, f.default)
        kw = dict(dest=f.name, default=default, help=_help(f) + _default_text(default))
        kind = f.type.replace(" | None", "")
        if kind == "bool":
            kw["action"] = "store_true" if not default else argparse.BooleanOptionalAction
        else:
            kw["type"], kw["choices"] = FLAG_PARSERS[kind], choices_of(f)
        g.add_argument(flag_name(f), **kw)


def config_from_args(a: argparse.Namespace, **overrides):
    """The RunConfig of parsed flags: each field takes its flag's value (``overrides`` win), and
    fields without a flag on this command keep the config's defaults."""
    from jaxmlp.config import SECTIONS, RunConfig
    unknown = set(overrides) - {k for c in SECTIONS.values() for k in c.__dataclass_fields__}
    if unknown:
        raise TypeError(f"no config field named {', '.join(sorted(unknown))}")
    parts = {}
    for name, cls in SECTIONS.items():
        kw = {f.name: getattr(a, f.name) for f in cli_fields(cls) if hasattr(a, f.name)}
        kw.update({k: v for k, v in overrides.items() if k in cls.__dataclass_fields__})
        parts[name] = cls(**kw)
    return RunConfig(**parts)


def add_train_flags(p: argparse.ArgumentParser, skip=()) -> None:
    """The flags of ``train`` (and ``sweep``, which ``skip``s the fields that are its axes):
    every config field, devices and processes, output."""
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    add_config_flags(p, DataConfig, "data", skip=skip)
    add_config_flags(p, ModelConfig, "model", skip=skip)
    add_config_flags(p, TrainConfig, "training", skip=skip)
    sweeping = bool(skip)
    d = p.add_argument_group("devices and processes")
    d.add_argument("--devices", type=_devices, default=None,
                   help="N or 'auto' (all): " + ("shard the models over N devices" if sweeping else
                                                 "data-parallel over N devices; --batch-size is the "
                                                 "global batch, split evenly over them"))
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="jax.distributed coordinator (or JAX_COORDINATOR_ADDRESS)")
    d.add_argument("--num-processes", type=_positive_int, default=None,
                   help="(or JAX_NUM_PROCESSES)")
    d.add_argument("--process-id", type=_non_negative_int, default=None, help="(or JAX_PROCESS_ID)")
    d.add_argument("--distributed", choices=("off", "auto"), default="off",
                   help="auto: the tasks a cluster launcher started (srun, mpirun, a TPU pod) "
                        "form one multi-process job, found by JAX's cluster detection")
    d.add_argument("--local-devices", type=_device_ids, default=None, metavar="IDS",
                   help="this process's device ids, e.g. 0,1 (default: JAX's choice; under "
                        "Slurm one GPU per task)")
    d.add_argument("--peer-timeout", type=_number(0.0, above=True, hi=PEER_TIMEOUT_MAX), default=60.0,
                   help="multi-process: seconds without progress before giving up on peers")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="run folder (default: runs/<command>-<time>)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="keep compiled programs in DIR for later runs (JAX's persistent cache; "
                        "default: $JAXMLP_COMPILE_CACHE, else ~/.cache/jaxmlp/xla)")
    o.add_argument("--no-compile-cache", action="store_true",
                   help="compile everything afresh and keep nothing (or JAXMLP_COMPILE_CACHE=off)")
    if not sweeping:
        o.add_argument("--log-every", type=_log_every, default=None, metavar="STEPS|auto|off",
                       help="report the mini-batch loss every STEPS optimizer steps from inside "
                            "the compiled chunks (moves the bar between chunks; steps.jsonl); "
                            "auto: about 4 reports a second; default: auto for runs estimated "
                            "to train >= 30 s in steps of >= 0.1 ms, else off (a reporting "
                            "program is not kept in the compile cache)")
    o.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to OUT/tensorboard (the tensorboard "
                        "extra: tensorboardX); " + ("one run per model, when the sweep ends" if
                                                    sweeping else "per epoch and per step report"))
    o.add_argument("--fast-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile for a short run (less compile, slower steps on CPU); default: "
                        "decided by the run's estimated work (train: elementwise values; sweep: "
                        "training FLOPs per program)")


# --------------------------------------------------------------------------- sweep axes
#: TrainConfig fields that are sweep axes: ``jaxmlp sweep`` takes comma lists for them.
def _cli_axes() -> list:
    from jaxmlp.sweeps.axes import cli_axes  # the table of sweep axes (no JAX)
    return list(cli_axes())


#: Traced sweep axes that are also train flags: the sweep takes them as comma lists instead.
SWEEP_AXIS_FIELDS = tuple(name for name, _, _ in _cli_axes()
                          if name not in ("width", "depth"))


def add_sweep_axis_flags(p: argparse.ArgumentParser) -> None:
    """The sweep's axes (``jaxmlp.sweeps.axes``): one comma-list flag per axis, ``--seeds N``
    models per configuration."""
    g = p.add_argument_group("sweep axes (comma lists)")
    for name, typ, help_ in _cli_axes():
        g.add_argument(f"--{name}", dest=f"axis_{name}", type=_comma_list(typ), default=None,
                       metavar=name.upper(), help=f"{help_}, one model per value")
    g.add_argument("--seeds", type=_positive_int, default=1, help="number of seeds per configuration")


def grid_from_args(a: argparse.Namespace) -> dict:
    """The axes given as flags: ``{axis: [values]}``."""
    return {name: list(getattr(a, f"axis_{name}")) for name, _, _ in _cli_axes()
            if getattr(a, f"axis_{name}", None) is not None}


# --------------------------------------------------------------------------- the other commands
def add_sweep_flags(p: argparse.ArgumentParser) -> None:
    """``jaxmlp sweep``: the train flags, with the axes as comma lists, and the grid's layout."""
    from jaxmlp.config import PACKING_NAMES
    add_train_flags(p, skip=SWEEP_AXIS_FIELDS)
    add_sweep_axis_flags(p)
    g = p.add_argument_group("grid")
    g.add_argument("--grid", default=None, help="JSON/TOML grid file (axis -> list, 'seeds')")
    g.add_argument("--max-pad-ratio", type=_number(1.0, above=False), default=8.0,
                   help="widths within this ratio share one padded program (1 = one per width)")
    g.add_argument("--packing", default="auto", choices=list(PACKING_NAMES),
                   help="mixed widths: pad every model to the widest (one program per "
                        "--max-pad-ratio bucket), pack each width at its own size into one "
                        "program, or auto: the one estimated faster")
    g.add_argument("--heatmap", default=None, help="two axes for the heatmap, e.g. width,lr")
    g.add_argument("--data-devices", type=_positive_int, default=1,
                   help="split each model's batch over this many devices: a 2-D (models x data) "
                        "mesh for large sweeps of large models")
    g.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                   help="continue an interrupted sweep from its checkpoint")


def add_predict_flags(p: argparse.ArgumentParser) -> None:
    """``jaxmlp predict``: a run folder and, optionally, another data set to score."""
    from jaxmlp.config import DataConfig
    p.add_argument("--run", required=True, metavar="RUN_DIR")
    add_config_flags(p, DataConfig, "data (default: the run's)", only=("dataset", "target"),
                     defaults={"dataset": None})


def add_watch_flags(p: argparse.ArgumentParser) -> None:
    """``jaxmlp watch``: a run folder, once or following it."""
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--follow", "-f", action="store_true",
                   help="print again as the run writes, until it finishes (Ctrl-C to stop)")
    p.add_argument("--interval", type=_number(0.0, above=True, hi=3600.0), default=1.0,
                   help="seconds between looks with --follow")


def add_gradcheck_flags(p: argparse.ArgumentParser) -> None:
    """``jaxmlp gradcheck``: the config fields a gradient check uses (a smaller model and batch
    by default than training's) and its tolerance."""
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    add_config_flags(p, DataConfig, "data", only=("dataset", "target", "n_samples"))
    add_config_flags(p, ModelConfig, "model", only=("hidden", "activation"),
                     defaults={"hidden": (32,)})
    add_config_flags(p, TrainConfig, "loss and batch",
                     only=("loss", "temperature", "batch_size", "seed"), defaults={"batch_size": 16})
    p.add_argument("--n-fd", type=_positive_int, default=12,
                   help="finite-difference entries per array")
    p.add_argument("--tol", type=_number(0.0, above=False), default=1e-6,
                   help="max relative/abs error allowed")
