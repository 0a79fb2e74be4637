"""Fuzz the command line: generated argument lists and data files through ``jaxmlp.cli.main``.

Flags come from the parser itself (``build_parser``: train, sweep, predict, gradcheck), values
from edge classes (empty, negative, zero, nan, inf, huge, wrong type, unicode, paths that do not
exist / are folders / unreadable, generated CSV and NPZ files). Property of every run: it exits
0 (done), 1 (divergence, named as such; gradcheck's FAIL) or 2 (exactly one ``error:`` line),
never with a traceback or the catch-all's ``error: SomeError: ...``, in bounded time, and leaves
no half-written file in its output folder (no ``*.tmp``; every JSON file parses).

Runs in-process with tiny defaults prepended (``--epochs 1 --n-samples 60 --hidden 4``: a flag
the example gives wins), so compiled programs are shared through the session's caches.
``FUZZ_EXAMPLES`` sets the number of random examples (default 250, the CI profile; 1000 or
more also tries every flag with every edge value: ``test_every_flag_edge_values``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmlp.cli import build_parser, main
from jaxmlp.cli_flags import SWEEP_AXIS_FIELDS

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
COMMANDS = ("train", "sweep", "predict", "gradcheck")
#: Flags the fuzzer leaves alone: a coordinator address or --distributed auto makes a real
#: jax.distributed job (waits for peers; --local-devices only applies in one), the
#: compile-cache flags would re-point this test session's cache, and --out is always the
#: example's own folder.
SKIPPED = {"--coordinator", "--distributed", "--local-devices", "--compile-cache",
           "--no-compile-cache", "--out", "-h", "--help"}
#: The tiny run every example starts from (its own flags win: argparse keeps the last).
TINY = {"train": ["--epochs", "1", "--n-samples", "60", "--hidden", "4", "--quiet"],
        "sweep": ["--epochs", "1", "--n-samples", "60", "--hidden", "4", "--quiet"],
        "gradcheck": ["--n-samples", "60", "--hidden", "4", "--n-fd", "2"],
        "predict": []}
SMALL_SETS = ["iris", "spirals", "x2", "moons", "wine", "diabetes", "blobs", "nosuchset", ""]
CATCH_ALL = re.compile(r"^error: [A-Za-z_.]*(Error|Exception|Interrupt)\b: ")


#: Plausible values: each flag gets those it parses (and its choices), so that examples get
#: past parsing and reach the data, the config checks, the compile and the folder writing.
PLAUSIBLE = ["1", "2", "3", "0.1", "0.5", "0.01", "0", "4,2", "0.1,0.2", "2,8", "1,2", "auto"]


#: Plausible values of the flags that take names.
TEXT = {"optimizer": ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"),
        "heatmap": ("lr,width", "width,lr", "lr,temperature", "depth,l2", "seed,lr"),
        "dataset": tuple(SMALL_SETS), "target": ("label", "a", "b", "y", "")}


def _parses(action, text: str) -> bool:
    try:
        value = action.type(text) if action.type else text
    except Exception:  # noqa: BLE001 - argparse's types raise several kinds
        return False
    return not action.choices or value in action.choices


def command_flags(command: str) -> list[tuple[str, bool, tuple]]:
    """``(flag, takes_value, plausible values)`` of every option of ``command``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = []
    for action in sub.choices[command]._actions:
        ok = tuple(str(c) for c in action.choices or ()) + TEXT.get(action.dest, tuple(
            v for v in PLAUSIBLE if _parses(action, v)))
        for opt in action.option_strings:
            if opt not in SKIPPED:
                flags.append((opt, action.nargs != 0, ok or ("1",)))
    return sorted(flags)


FLAGS = {c: command_flags(c) for c in COMMANDS}

# --------------------------------------------------------------------------- values
EDGE = ["", " ", "-1", "0", "-0", "1", "2", "0.5", "1.5", "-2.5", "nan", "-nan", "inf", "-inf",
        "1e309", "-1e309", "1e-320", "99999999999999999999", str(2**31), str(2**32), "0x10",
        "abc", "true", "None", "none", "ünïcödé", "名前", "\u200b", "1,2", "2,,3", "1,-1",
        "0.1,nan", "4,4", ",", "--", "-", "'", "\"", "%s", "{}", "a\nb"]


# --------------------------------------------------------------------------- data files
CELLS = ["0", "1", "2", "-3", "0.5", "1e5", "1e30", "-1e38", "1e39", "nan", "inf", "-inf", "",
         "x", "ü", "True", " 4 ", "007", "1e-40"]


@st.composite
def csv_text(draw):
    n_cols = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["a", "b", "label", "ü", "", "a b", "1"]),
                           min_size=n_cols, max_size=n_cols))
    n_rows = draw(st.sampled_from([0, 1, 2, 3, 12, 40]))
    kind = draw(st.sampled_from(["good", "cells", "ragged", "constant", "empty"]))
    if kind == "empty":
        return draw(st.sampled_from(["", "\n", ",,,\n", "\ufeff"]))
    rows = []
    for i in range(n_rows):
        if kind == "good":
            row = [str(i % 7 + j) for j in range(n_cols - 1)] + [str(i % 3)]
        elif kind == "constant":
            row = ["5"] * (n_cols - 1) + [str(i % 2)]
        else:
            width = n_cols if kind == "cells" else draw(st.integers(0, n_cols + 1))
            row = [draw(st.sampled_from(CELLS)) for _ in range(width)]
        rows.append(",".join(row))
    return ",".join(header) + "\n" + "".join(r + "\n" for r in rows)


@st.composite
def npz_arrays(draw):
    n = draw(st.sampled_from([0, 1, 2, 3, 12, 40]))
    d = draw(st.sampled_from([0, 1, 3]))
    fill = draw(st.sampled_from(["normal", "constant", "nan", "inf", "huge", "int"]))
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    X = rng.standard_normal((n, d)).astype(np.float32)
    if fill == "constant":
        X[:] = 1.0
    elif fill in ("nan", "inf") and X.size:
        X.flat[0] = np.nan if fill == "nan" else np.inf
    elif fill == "huge":
        X = X.astype(np.float64) * 1e300
    elif fill == "int":
        X = (X * 10).astype(np.int64)
    labels = draw(st.sampled_from(["classes", "one_class", "regression", "negative", "float",
                                   "strings", "short", "missing"]))
    arrays = {"X": X}
    if labels == "classes":
        arrays["y"] = np.arange(n) % 3
    elif labels == "one_class":
        arrays["y"] = np.zeros(n, np.int64)
    elif labels == "regression":
        arrays["y"] = rng.standard_normal(n)
    elif labels == "negative":
        arrays["y"] = -(np.arange(n) % 3) - 1
    elif labels == "float":
        arrays["y"] = (np.arange(n) % 2) + 0.5
    elif labels == "strings":
        arrays["y"] = np.array([f"c{i % 2}" for i in range(n)])
    elif labels == "short":
        arrays["y"] = np.arange(max(n - 1, 0)) % 2
    return arrays


GRIDS = ['{"width": ["wide"]}', '{"lr": [null]}', '{"lr": []}', '{"lr": 0.1}', '[1, 2]',
         '{"lr": [0.1, 0.2], "seeds": 2}', '{"seeds": 0}', '{"seeds": [1.5]}', '{"depth": [0]}',
         '{"width": [4.0, 8]}', '{"lr": [1e400]}', '{"colour": [1]}', '{"seeds": "x"}',
         '{"seeds": [-1]}', '{"seeds": []}', '{"width": [true]}', "{not json", "",
         '{"momentum": [1.0]}', '{"temperature": [0]}', '{"seed": [0, 0]}']


def write_files(root: Path, csv: str, npz: dict, grid: str) -> list[str]:
    """The example's files and odd paths, as argument strings."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.csv").write_text(csv)
    np.savez(root / "data.npz", **npz)
    (root / "grid.json").write_text(grid)
    (root / "grid.toml").write_text('lr = [0.1, "x"]\n')
    (root / "folder.csv").mkdir(exist_ok=True)
    unreadable = root / "locked.csv"
    unreadable.write_text("a,label\n1,0\n2,1\n")
    unreadable.chmod(0)
    return [str(root / n) for n in ("data.csv", "data.npz", "grid.json", "grid.toml",
                                    "folder.csv", "locked.csv", "missing.csv", "missing.npz")] + [
        str(root), "/", "/dev/null"]


# --------------------------------------------------------------------------- the property
@st.composite
def examples(draw):
    """A command, its data set and up to four flags: at most one with an edge value (or a
    path), the others with values the flag parses, so the edge value is what is tested."""
    command = draw(st.sampled_from(COMMANDS))
    n = draw(st.integers(0, 4))
    chosen = draw(st.lists(st.sampled_from(FLAGS[command]), min_size=n, max_size=n))
    edge = draw(st.integers(-n, n - 1)) if n else -1  # < 0: none
    dataset = draw(st.one_of(st.sampled_from(SMALL_SETS), st.just("{data.csv}"),
                             st.just("{data.npz}")))
    return command, dataset, chosen, edge, draw(st.data())


def check_folder(out: Path) -> None:
    """Nothing half-written: no temp files; every JSON file parses."""
    if not out.exists():
        return
    for p in out.rglob("*"):
        assert not p.name.endswith(".tmp"), f"temp file left behind: {p}"
        if p.suffix == ".json" and p.is_file():
            json.loads(p.read_text())


def check_result(command, rc, out, err) -> None:
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert all(ln.startswith(("error: ", "warning: ", "interrupted: ")) for ln in lines), err
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert not any(CATCH_ALL.match(ln) for ln in errors), err
    if rc == 0:
        assert not errors, err
    elif rc == 1:
        if command == "gradcheck" and "FAIL:" in out:
            return
        assert len(errors) == 1 and "diverged" in errors[0], (rc, err)
    else:
        assert rc == 2, (rc, err)
        assert len(errors) == 1, err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny iris run folder for predict (and --resume) to point at."""
    out = tmp_path_factory.mktemp("fuzz_run") / "run"
    assert main(["train", "--dataset", "iris", "--hidden", "4", "--epochs", "1",
                 "--quiet", "--out", str(out)]) == 0
    return str(out)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(ex=examples(), csv=csv_text(), npz=npz_arrays(), grid=st.sampled_from(GRIDS))
def test_fuzz_cli_exits_cleanly(ex, csv, npz, grid, tmp_path_factory, trained_run, capsys):
    command, dataset, chosen, edge, data = ex
    root = tmp_path_factory.mktemp("fuzz")
    paths = write_files(root / "files", csv, npz, grid) + [trained_run]
    argv = [command] + TINY[command]
    if command == "predict":
        argv += ["--run", trained_run]
    else:
        argv += ["--dataset", dataset.replace("{data.csv}", paths[0]).replace("{data.npz}", paths[1])]
    for i, (flag, takes_value, plausible) in enumerate(chosen):
        argv.append(flag)
        if takes_value:
            odd = st.one_of(st.sampled_from(EDGE), st.sampled_from(paths))
            argv.append(data.draw(odd if i == edge else st.sampled_from(plausible), label=flag))
    out = root / "out"
    if command in ("train", "sweep"):
        argv += ["--out", str(out)]
    capsys.readouterr()
    t0 = time.perf_counter()
    try:
        rc = main(argv)
    finally:
        Path(paths[5]).chmod(stat.S_IRUSR | stat.S_IWUSR)
    elapsed = time.perf_counter() - t0
    stdout, err = capsys.readouterr()
    if os.environ.get("FUZZ_LOG"):  # one JSON line per example, for a long local run's tally
        with open(os.environ["FUZZ_LOG"], "a") as f:
            f.write(json.dumps({"argv": argv[1:], "rc": rc, "s": round(elapsed, 2),
                                "err": err.strip().splitlines()[-1:]}) + "\n")
    check_result(command, rc, stdout, err)
    assert elapsed < 120, f"{argv} took {elapsed:.0f}s"
    check_folder(out)
    check_folder(Path(trained_run))


#: The edge values every flag is tried with (``test_every_flag_edge_values``): in the CI
#: profile those that found bugs (about 1 s per 10 runs), all with ``FUZZ_EXAMPLES >= 1000``.
FLAG_EDGES = (["", "-1", "0", "nan", "inf", "1e309", "99999999999999999999", "abc", "ünï"]
              if FUZZ_EXAMPLES >= 1000 else ["", "0", "nan"])


def test_every_flag_edge_values(tmp_path, trained_run, capsys):
    """Systematically (the random examples above rarely pair a given flag with a given
    value): every value-taking flag of every command with each of ``FLAG_EDGES``, on the
    tiny run."""
    failures = []
    train_flags = {f for f, _, _ in FLAGS["train"]}
    for command in COMMANDS:
        for flag, takes_value, _ in FLAGS[command]:
            if not takes_value or (command == "sweep" and FUZZ_EXAMPLES < 1000 and flag in
                                   train_flags and flag[2:] not in SWEEP_AXIS_FIELDS):
                continue  # CI profile: a flag sweep shares with train is train's (same checks)
            for value in FLAG_EDGES:
                out = tmp_path / f"{command}{flag}{FLAG_EDGES.index(value)}"
                argv = [command] + TINY[command] + (["--run", trained_run] if command == "predict"
                                                    else ["--dataset", "iris"])
                argv += [flag, value] + (["--out", str(out)] if command in ("train", "sweep") else [])
                capsys.readouterr()
                t0 = time.perf_counter()
                rc = main(argv)
                stdout, err = capsys.readouterr()
                if os.environ.get("FUZZ_LOG"):
                    with open(os.environ["FUZZ_LOG"], "a") as f:
                        f.write(json.dumps({"argv": [command, flag, value], "rc": rc,
                                            "s": round(time.perf_counter() - t0, 2)}) + "\n")
                try:
                    check_result(command, rc, stdout, err)
                    check_folder(out)
                except AssertionError:
                    failures.append(f"{command} {flag} {value!r}: exit {rc}: {err.strip()[-200:]}")
    assert not failures, "\n".join(failures)
