"""End-to-end CLI: `jaxmlp train` writes a complete run folder, `jaxmlp predict` scores data with
its checkpoint, help works. One real subprocess per console-script path; the rest in-process."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import run_main
from jaxmlp.runs import checkpoint as ckpt
from jaxmlp.cli import main
from jaxmlp.config import RunConfig
from jaxmlp.data import load_dataset, load_splits
from jaxmlp.runs.predict import params_from_run

JAXMLP = str(Path(sys.executable).with_name("jaxmlp"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FILES = ["checkpoint.npz", "config.json", "curves.png", "metrics.csv", "metrics.jsonl",
             "summary.json"]


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A tiny classification run through the real console script."""
    out = tmp_path_factory.mktemp("cli") / "iris"
    r = subprocess.run([JAXMLP, "train", "--dataset", "iris", "--hidden", "8", "--epochs", "5",
                        "--batch-size", "32", "--lr", "0.3", "--seed", "1", "--quiet",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    return out, r


def test_compile_cache_is_filled_then_used_with_identical_results(tmp_path):
    """--compile-cache: the first process writes its compiled programs; a second identical run
    in a fresh process finds every program under the same keys (it adds no entry: the keys
    are stable across processes) and trains to bit-identical params."""
    cache = tmp_path / "cache"

    def run(name):
        r = subprocess.run([JAXMLP, "train", "--dataset", "iris", "--hidden", "8", "--epochs", "3",
                            "--quiet", "--compile-cache", str(cache), "--out", str(tmp_path / name)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    first = run("a")
    assert len([p for p in first if p.endswith(".pkl")]) == 2  # the initialisation, the chunk
    assert run("b") == first
    a, b = (np.load(tmp_path / n / "checkpoint.npz") for n in ("a", "b"))
    leaves = [k for k in a.files if k.startswith("leaf")]
    assert leaves and all(np.array_equal(a[k], b[k]) for k in leaves)


def test_compile_cache_bad_folder_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["train", "--dataset", "iris", "--epochs", "1", "--compile-cache",
               str(blocker / "sub"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: compile cache") and "\n" not in err, err
    assert not (tmp_path / "o").exists()


def test_train_writes_a_complete_run_folder(iris_run):
    out, r = iris_run
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    line = r.stdout.strip()
    assert re.fullmatch(r"iris: test_accuracy=\d\.\d{4} test_loss=\d+\.\d{4} val_loss=\d+\.\d{4} "
                        r"epochs=5 compile=.*s train=.*s samples/s=\S+ -> " + re.escape(str(out)),
                        line), line
    for name in RUN_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    cfg = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg.data.dataset == "iris" and cfg.model.hidden == (8,) and cfg.train.epochs == 5

    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        assert {"epoch", "train_loss", "val_loss", "test_loss", "test_accuracy"} <= set(row)
        assert all(isinstance(row[k], float) for k in ("train_loss", "val_loss", "test_loss"))
    with open(out / "metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(t["epoch"]) for t in table] == [1, 2, 3, 4, 5]
    assert float(table[-1]["test_accuracy"]) == pytest.approx(rows[-1]["test_accuracy"])

    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 5 and not summary["diverged"]
    assert f"test_accuracy={summary['test_accuracy']:.4f}" in line
    assert summary["test_accuracy"] == pytest.approx(rows[-1]["test_accuracy"], abs=1e-6)

    leaves, meta = ckpt.read_checkpoint(out / "checkpoint.npz")
    assert meta["epoch"] == 5 and RunConfig.from_dict(meta["config"]) == cfg

    png = (out / "curves.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image as mpimg
    img = mpimg.imread(out / "curves.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_regression_run_writes_test_mse(tmp_path, capsys):
    out = tmp_path / "reg"
    rc, stdout, err = run_main(["train", "--dataset", "x2", "--n-samples", "64", "--hidden", "8",
                                "--epochs", "3", "--batch-size", "16", "--quiet", "--out", out],
                               capsys)
    assert rc == 0, err
    assert re.search(r"test_loss=\S+ test_mse=\d+\.\d{4}", stdout), stdout
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"epoch", "train_loss", "val_loss", "test_loss", "test_mse"} <= set(r) for r in rows)
    assert not any("accuracy" in k for k in rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_mse"] >= 0 and "test_accuracy" not in summary
    assert "test_mse" in (out / "metrics.csv").read_text().splitlines()[0].split(",")


def _numpy_logits(params, X):
    """An independent forward pass (tanh hidden layers) in float64 numpy."""
    h = np.asarray(X, np.float64)
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["W"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(params) - 1:
            h = np.tanh(h)
    return h


def test_predict_matches_independent_computation(iris_run, capsys):
    out, r = iris_run
    assert r.returncode == 0, r.stderr
    rc, stdout, err = run_main(["predict", "--run", out], capsys)
    assert rc == 0 and err == "", err
    res = json.loads(stdout)
    assert res["n"] == 150 and set(res) >= {"loss", "accuracy", "n"}

    cfg, params, norm = params_from_run(out)
    ds = load_dataset(cfg.data)
    X = (ds.X - np.asarray(norm["x_mean"])) / np.asarray(norm["x_std"])
    logits = _numpy_logits(params, X)
    acc = np.mean(np.argmax(logits, 1) == ds.y)
    z = logits - logits.max(1, keepdims=True)
    nll = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), ds.y])
    assert round(res["accuracy"] * res["n"]) == int(np.sum(np.argmax(logits, 1) == ds.y))
    assert res["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert res["loss"] == pytest.approx(nll, rel=1e-4)


def test_predict_on_the_test_split_reproduces_test_accuracy(iris_run, tmp_path, capsys):
    out, r = iris_run
    assert r.returncode == 0, r.stderr
    cfg = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    s = load_splits(cfg.data)
    raw = s.X_test * s.x_std + s.x_mean  # back to the file's units
    np.savez(tmp_path / "iris_test.npz", X=raw, y=s.y_test)
    rc, stdout, err = run_main(["predict", "--run", out, "--dataset", tmp_path / "iris_test.npz"],
                               capsys)
    assert rc == 0, err
    res = json.loads(stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert res["n"] == len(s.y_test)
    assert res["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert res["loss"] == pytest.approx(summary["test_loss"], rel=1e-4)


def test_help_exits_0():
    r = subprocess.run([JAXMLP, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "predict" in r.stdout


@pytest.mark.parametrize("argv", [["train", "--help"], ["predict", "--help"], ["--help"]])
def test_subcommand_help_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: jaxmlp" in out
    if argv[0] == "train":
        for flag in ("--dataset", "--hidden", "--lr", "--epochs", "--resume", "--checkpoint-every"):
            assert flag in out


def test_no_command_prints_usage_and_exits_2(capsys):
    rc, out, _ = run_main([], capsys)
    assert rc == 2 and "usage: jaxmlp" in out
