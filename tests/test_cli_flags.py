"""The command-line flags generated from the config dataclasses: one flag per config field with
the config's own default, type and choices, and flags that parse into exactly the config the
same values build in Python (or fail with the same error)."""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmlp.registry as registry
from jaxmlp.cli import _UsageError, build_parser, config_from_args
from jaxmlp.cli_flags import SWEEP_AXIS_FIELDS, _help, cli_fields, flag_name, grid_from_args
from jaxmlp.config import SECTIONS, ModelConfig, RunConfig, TrainConfig, choices_of
from jaxmlp.errors import ConfigError

ALL_FIELDS = [f for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
FLAG_FIELDS = [f for cls in SECTIONS.values() for f in cli_fields(cls)]


def actions(command: str) -> dict[str, argparse.Action]:
    """The flags of one subcommand: option string -> argparse action."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {o: act for act in sub.choices[command]._actions for o in act.option_strings}


def test_every_config_field_has_help_and_a_unique_name():
    assert all(f.metadata.get("help") for f in ALL_FIELDS)
    names = [f.name for f in ALL_FIELDS]
    assert len(names) == len(set(names))  # config_from_args reads a namespace by field name
    # the only fields kept off the command line, on purpose
    assert {f.name for f in ALL_FIELDS} - {f.name for f in FLAG_FIELDS} == {"standardize"}


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_each_field_has_a_flag_with_the_configs_default_and_choices(command):
    flags = actions(command)
    for f in FLAG_FIELDS:
        act = flags[flag_name(f)]
        if command == "sweep" and f.name in SWEEP_AXIS_FIELDS:
            assert act.default is None and act.type("0.5,1") == (0.5, 1.0)  # a comma list
            continue
        assert act.dest == f.name and act.default == f.default, f.name
        choices = choices_of(f)
        assert (tuple(act.choices) if act.choices else None) == choices, f.name
        assert _help(f) in act.help
    assert "spirals, car_sensor" in flags["--dataset"].help  # the names come from the catalog


def test_no_flags_is_the_python_default_config():
    """One default per setting: a bare `jaxmlp train` builds RunConfig() exactly (this once
    differed: --checkpoint-every defaulted to 10, TrainConfig to 0)."""
    a = build_parser().parse_args(["train"])
    assert config_from_args(a) == RunConfig()
    assert actions("train")["--checkpoint-every"].default == TrainConfig().checkpoint_every == 0


def test_gradcheck_and_predict_flags_come_from_the_config():
    gc = actions("gradcheck")
    assert {"--dataset", "--target", "--n-samples", "--hidden", "--activation", "--loss",
            "--temperature", "--batch-size", "--seed", "--n-fd", "--tol"} == set(gc) - {"-h", "--help"}
    # a gradient check's own smaller model and batch; every other default is the config's
    assert gc["--hidden"].default == (32,) and gc["--batch-size"].default == 16
    assert gc["--temperature"].default == TrainConfig().temperature
    assert tuple(gc["--loss"].choices) == registry.loss_names()
    a = build_parser().parse_args(["gradcheck", "--hidden", "5,4", "--temperature", "0.5"])
    cfg = config_from_args(a)
    assert cfg.model == ModelConfig(hidden=(5, 4)) and cfg.train == TrainConfig(temperature=0.5,
                                                                              batch_size=16)
    pr = actions("predict")
    assert pr["--dataset"].default is None and pr["--target"].default is None


def test_new_registry_names_are_flag_choices_and_valid(monkeypatch):
    """Choices are read from jaxmlp.registry when the parser is built and when a config is
    checked: a name registered there works on the command line with no other change."""
    monkeypatch.setattr(registry, "activation_names", lambda: ("tanh", "relu", "gelu"))
    monkeypatch.setattr(registry, "loss_names", lambda: ("auto", "ce", "mse", "huber"))
    a = build_parser().parse_args(["train", "--activation", "gelu", "--loss", "huber"])
    cfg = config_from_args(a)
    assert cfg.model.activation == "gelu" and cfg.train.loss == "huber"
    assert tuple(actions("gradcheck")["--activation"].choices) == ("tanh", "relu", "gelu")
    with pytest.raises(_UsageError, match="invalid choice: 'sigmoid'"):
        build_parser().parse_args(["train", "--activation", "sigmoid"])
    with pytest.raises(ConfigError, match="activation must be one of tanh, relu, gelu"):
        ModelConfig(activation="sigmoid")


def test_sweep_axis_flags_give_the_grid_and_the_base_config():
    a = build_parser().parse_args(["sweep", "--width", "8,16", "--lr", "0.05,0.2", "--l2", "0.1",
                                   "--seeds", "3", "--epochs", "4"])
    assert grid_from_args(a) == {"width": [8, 16], "lr": [0.05, 0.2], "l2": [0.1]}
    assert a.seeds == 3
    base = config_from_args(a, lr=0.05, l2=0.1)
    assert base.train == TrainConfig(lr=0.05, l2=0.1, epochs=4)
    assert grid_from_args(build_parser().parse_args(["sweep"])) == {}
    a = build_parser().parse_args(["sweep", "--depth", "1,3", "--width", "16"])
    assert grid_from_args(a) == {"width": [16], "depth": [1, 3]}  # every axis of the table
    for bad in (["--depth", "1.5"], ["--width", "a"]):
        with pytest.raises(_UsageError, match="expected comma-separated integers"):
            build_parser().parse_args(["sweep", *bad])
    with pytest.raises(TypeError, match="no config field named width"):
        config_from_args(a, width=8)


@pytest.mark.parametrize("command", [[], ["train"], ["sweep"], ["predict"], ["gradcheck"]])
def test_help_imports_neither_jax_nor_numpy(command):
    """`jaxmlp [command] --help` stays fast: building the flags reads the config and the
    registry only (measured as `python -X importtime -m jaxmlp.cli ... --help`)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "jaxmlp.cli", *command, "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: jaxmlp" in r.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "jaxmlp.config" in imported and "jaxmlp.registry" in imported
    assert not {m for m in imported if m.split(".")[0] in ("jax", "numpy", "matplotlib")}


# --------------------------------------------------------------------------- round trip
SAFE_TEXT = st.text("abcdefghijklmnopqrstuvwxyz0123456789_./", min_size=1, max_size=10)


def _values(f: dataclasses.Field):
    """Values for a field, valid and invalid, from its type and choices alone (so a new field
    is covered without touching this test)."""
    kind = f.type.replace(" | None", "")
    choices = choices_of(f)
    if choices is not None:
        # mostly a valid name, now and then one argparse must refuse
        base = st.integers(0, 9).flatmap(lambda i: SAFE_TEXT if i == 0 else st.sampled_from(choices))
    elif kind == "int":
        base = st.one_of(st.integers(-3, 300), st.sampled_from([2**31 - 1, 2**31, 2**32]))
    elif kind == "float":
        base = st.one_of(st.floats(1e-3, 0.45), st.floats(-2.0, 3.0), st.sampled_from([0.0, 0.999]))
    elif kind == "bool":
        base = st.booleans()
    elif kind == "tuple[int, ...]":
        base = st.lists(st.integers(0, 300), max_size=3).map(tuple)
    else:
        assert kind == "str", f"no strategy for {f.name}: {f.type}"
        base = SAFE_TEXT
    return st.one_of(st.none(), base) if "None" in f.type else base


def _argv_text(v) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v)) or "none"
    return repr(v) if isinstance(v, float) else str(v)


def _argv(values: dict) -> list[str]:
    out = []
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(v, bool):
            out += [flag] if v else []
        elif v is not None:
            out.append(f"{flag}={_argv_text(v)}")
    return out


def _build(fn):
    """``fn()``'s config, or the kind of error it raised."""
    try:
        return fn()
    except ConfigError as e:
        return ("ConfigError", str(e))
    except _UsageError:
        return ("usage",)


def _python_config(values: dict) -> RunConfig:
    parts = {name: cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
             for name, cls in SECTIONS.items()}
    return RunConfig(**parts)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={f.name: _values(f) for f in FLAG_FIELDS}))
def test_cli_values_round_trip_into_the_python_config(values):
    """The same values given as flags or as keyword arguments build equal configs, or fail
    with the same ConfigError (argparse itself rejects a name outside the choices)."""
    values = {k: v for k, v in values.items() if not (v is False or v is None)}  # = absent
    py = _build(lambda: _python_config(values))
    cli = _build(lambda: config_from_args(build_parser().parse_args(["train", *_argv(values)])))
    if cli == ("usage",):  # a choice argparse refused: Python refuses it too
        choices = {f.name: choices_of(f) for f in FLAG_FIELDS}
        bad = [k for k, v in values.items() if choices[k] is not None and v not in choices[k]]
        assert bad and isinstance(py, tuple) and py[0] == "ConfigError"
        return
    assert cli == py
    if isinstance(py, RunConfig):
        assert RunConfig.from_dict(py.to_dict()) == py
