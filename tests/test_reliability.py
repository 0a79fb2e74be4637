"""Reliability: bad input rejected before any compile, divergence, checkpoints, signals, resume.

Bad-input cases run in-process through ``jaxmlp.cli.main`` (cheap); the signal and kill/resume
cases use real ``jaxmlp`` subprocesses.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import require_cpu_backend, run_main
from jaxmlp.atomic import atomic_write_text
from jaxmlp.runs import checkpoint as ckpt
import jaxmlp.training as T
from jaxmlp.cli import _UsageError, build_parser, config_from_args, main
from jaxmlp.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from jaxmlp.data import load_dataset
from jaxmlp.errors import CheckpointError, ConfigError, DataError, JaxmlpError
from jaxmlp.runs.folder import train_run

JAXMLP = str(Path(sys.executable).with_name("jaxmlp"))


def leaves_of(run_dir, name=ckpt.CHECKPOINT_NAME):
    return ckpt.read_checkpoint(Path(run_dir) / name)


def truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


# --------------------------------------------------------------------------- fixtures: files
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    (d / "nonnum.csv").write_text("a,b,label\n1,2,0\n3,x,1\n5,6,0\n")
    (d / "nan.csv").write_text("a,b,label\n1,nan,0\n3,4,1\n5,6,0\n")
    (d / "ragged.csv").write_text("a,b,label\n1,2,0\n3,4\n5,6,1\n")
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("a,b,label\n")
    (d / "good.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))
    (d / "data.txt").write_text("1,2,3\n")
    np.savez(d / "good.npz", X=X, y=y)
    Xi = X.copy()
    Xi[2, 1] = np.inf
    np.savez(d / "inf.npz", X=Xi, y=y)
    np.savez(d / "neg_label.npz", X=X, y=y - 1)
    np.savez(d / "mismatch.npz", X=X, y=y[:20])
    np.savez(d / "one_class.npz", X=X, y=np.zeros(30, np.int64))
    np.savez(d / "empty.npz", X=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    np.savez(d / "no_y.npz", X=X)
    np.savez(d / "five_classes.npz", X=X, y=np.arange(30) % 5)  # 4 features like iris
    np.savez(d / "two_features.npz", X=X[:, :2], y=y)
    (d / "dup_header.csv").write_text("a,a,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    for name, text in {"width_word": '{"width": ["wide"]}', "lr_null": '{"lr": [null]}',
                       "lr_empty": '{"lr": []}', "lr_scalar": '{"lr": 0.1}', "a_list": "[1, 2]",
                       "colour": '{"colour": [1]}', "seeds_zero": '{"seeds": 0}',
                       "bad_json": "{not json", "width_bool": '{"width": [true]}'}.items():
        (d / f"{name}.json").write_text(text)
    (d / "lr_word.toml").write_text('lr = [0.1, "x"]\n')
    raw = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny finished iris run and damaged copies of it."""
    d = tmp_path_factory.mktemp("runs")
    good = d / "good"
    cfg = RunConfig(data=DataConfig(dataset="iris"), model=ModelConfig(hidden=(4,)),
                    train=TrainConfig(epochs=3, checkpoint_every=1, batch_size=32))
    train_run(cfg, good)
    assert (good / "checkpoint.prev.npz").exists()
    noprev = d / "corrupt_noprev"
    shutil.copytree(good, noprev)
    truncate(noprev / "checkpoint.npz")
    (noprev / "checkpoint.prev.npz").unlink()
    both = d / "corrupt_both"
    shutil.copytree(good, both)
    truncate(both / "checkpoint.npz")
    truncate(both / "checkpoint.prev.npz", 0.9)
    badjson = d / "bad_json"
    shutil.copytree(good, badjson)
    (badjson / "config.json").write_text("{not json")
    badkey = d / "bad_key"
    shutil.copytree(good, badkey)
    c = json.loads((good / "config.json").read_text())
    c["train"]["learning_rate"] = 0.1
    (badkey / "config.json").write_text(json.dumps(c))
    (d / "not_a_run").mkdir()
    return d


# --------------------------------------------------------------------------- 1. bad input table
# (id, argv with {f} = data-file folder, {r} = runs folder, {o} = a fresh output folder,
#  keyword the one-line message must contain)
BAD = [
    ("unknown-dataset", "train --dataset nosuchset --out {o}", "unknown dataset"),
    ("unknown-extension", "train --dataset {f}/data.txt --out {o}", "unknown dataset"),
    ("missing-csv", "train --dataset {f}/missing.csv --out {o}", "not found"),
    ("missing-npz", "train --dataset {f}/missing.npz --out {o}", "not found"),
    ("non-numeric-csv", "train --dataset {f}/nonnum.csv --out {o}", "non-numeric"),
    ("nan-csv", "train --dataset {f}/nan.csv --out {o}", "non-finite"),
    ("inf-npz", "train --dataset {f}/inf.npz --out {o}", "non-finite"),
    ("ragged-csv", "train --dataset {f}/ragged.csv --out {o}", "ragged"),
    ("empty-csv", "train --dataset {f}/empty.csv --out {o}", "empty"),
    ("header-only-csv", "train --dataset {f}/header_only.csv --out {o}", "no data rows"),
    ("missing-target-column", "train --dataset {f}/good.csv --target nope --out {o}", "target column"),
    ("target-on-builtin", "train --dataset iris --target nope --out {o}", "csv files only"),
    ("labels-out-of-range-npz", "train --dataset {f}/neg_label.npz --out {o}", "out of range"),
    ("mismatched-lengths-npz", "train --dataset {f}/mismatch.npz --out {o}", "lengths must match"),
    ("one-class-npz", "train --dataset {f}/one_class.npz --out {o}", "one-class"),
    ("empty-npz", "train --dataset {f}/empty.npz --out {o}", "empty"),
    ("npz-without-y", "train --dataset {f}/no_y.npz --out {o}", "missing array"),
    ("truncated-npz", "train --dataset {f}/truncated.npz --out {o}", "truncated"),
    ("garbage-npz", "train --dataset {f}/garbage.npz --out {o}", "corrupted"),
    ("lr-zero", "train --lr 0 --out {o}", "learning rate"),
    ("lr-negative", "train --lr -0.5 --out {o}", "learning rate"),
    ("lr-nan", "train --lr nan --out {o}", "learning rate"),
    ("lr-inf", "train --lr inf --out {o}", "learning rate"),
    ("lr-not-a-number", "train --lr fast --out {o}", "--lr"),
    ("temperature-zero", "train --temperature 0 --out {o}", "temperature"),
    ("temperature-negative", "train --temperature -2 --out {o}", "temperature"),
    ("batch-size-zero", "train --batch-size 0 --out {o}", "batch size"),
    ("batch-size-float", "train --batch-size 2.5 --out {o}", "--batch-size"),
    ("drop-last-batch-too-big", "train --dataset iris --drop-last --batch-size 1000 --out {o}", "batch size"),
    ("hidden-empty", ["train", "--hidden", "", "--out", "{o}"], "empty hidden"),
    ("hidden-zero", "train --hidden 0 --out {o}", "hidden"),
    ("hidden-not-int", "train --hidden 8,x --out {o}", "hidden"),
    ("epochs-zero", "train --epochs 0 --out {o}", "epochs"),
    ("epochs-huge", "train --epochs 99999999999999 --out {o}", "epochs"),
    ("step-overflow", "train --epochs 2000000000 --batch-size 1 --out {o}", "overflow"),
    ("seed-negative", "train --seed -1 --out {o}", "seed"),
    ("seed-huge", "train --seed 99999999999999999999999 --out {o}", "seed"),
    ("unknown-optimizer", "train --optimizer adamm --out {o}", "unknown optimizer"),
    ("manual-bf16", "train --grad manual --compute-dtype bfloat16 --out {o}", "float32 only"),
    ("optimizer-without-lr", "train --optimizer chain --out {o}", "optimizer"),
    ("bad-activation", "train --activation swish --out {o}", "activation"),
    ("bad-loss", "train --loss hinge --out {o}", "--loss"),
    ("ce-on-regression", "train --dataset diabetes --loss ce --out {o}", "cross-entropy"),
    ("task-contradicts-builtin", "train --dataset iris --task regression --out {o}", "task"),
    ("val-fraction-above-1", "train --val-fraction 1.5 --out {o}", "val_fraction"),
    ("test-fraction-negative", "train --test-fraction -0.1 --out {o}", "test_fraction"),
    ("fractions-sum-to-1", "train --val-fraction 0.5 --test-fraction 0.5 --out {o}", "below 1"),
    ("momentum-one", "train --momentum 1 --out {o}", "momentum"),
    ("l2-negative", "train --l2 -1 --out {o}", "l2"),
    ("checkpoint-every-negative", "train --checkpoint-every -1 --out {o}", "checkpoint_every"),
    ("n-samples-zero", "train --dataset spirals --n-samples 0 --out {o}", "n_samples"),
    ("unknown-flag", "train --bogus 1 --out {o}", "unrecognized"),
    ("abbreviated-flag", "train --ep 5 --out {o}", "unrecognized"),
    ("out-is-existing-run", "train --dataset iris --out {r}/good", "already holds a run"),
    ("resume-non-run-folder", "train --resume {r}/not_a_run", "not a run folder"),
    ("resume-missing-folder", "train --resume {r}/nowhere", "not a run folder"),
    ("resume-bad-config-json", "train --resume {r}/bad_json", "json"),
    ("resume-unknown-config-key", "train --resume {r}/bad_key", "learning_rate"),
    ("resume-with-other-flags", "train --resume {r}/good --lr 0.5", "--lr cannot be combined"),
    ("resume-corrupt-no-prev", "train --resume {r}/corrupt_noprev", "corrupted"),
    ("resume-corrupt-both", "train --resume {r}/corrupt_both", "previous one is unusable"),
    ("predict-missing-run", "predict --run {r}/nowhere", "not a run folder"),
    ("predict-corrupt-run", "predict --run {r}/corrupt_noprev", "corrupted"),
    ("predict-wrong-features", "predict --run {r}/good --dataset {f}/two_features.npz", "features"),
    ("predict-labels-out-of-range", "predict --run {r}/good --dataset {f}/five_classes.npz",
     "out of range"),
    ("predict-missing-data", "predict --run {r}/good --dataset {f}/missing.npz", "not found"),
    ("predict-run-is-a-file", "predict --run {f}/good.csv", "not a run folder"),
    ("predict-target-on-builtin", "predict --run {r}/good --dataset iris --target x", "csv files only"),
    ("duplicate-header-csv", "train --dataset {f}/dup_header.csv --out {o}", "duplicate column"),
    # issue 15: flags outside the config, checked when parsed
    ("gradcheck-n-fd-zero", "gradcheck --dataset iris --n-fd 0", "--n-fd: must be >= 1"),
    ("gradcheck-n-fd-negative", "gradcheck --dataset iris --n-fd -3", "--n-fd: must be >= 1"),
    ("optimizer-line-search", "train --dataset iris --optimizer lbfgs --out {o}",
     "its update needs more than the gradients"),
    ("optimizer-adafactor", "sweep --dataset iris --optimizer adafactor --out {o}",
     "its update needs more than the gradients"),
    ("optimizer-random-key-state", "train --dataset iris --optimizer noisy_sgd --out {o}",
     "optimizer 'noisy_sgd' cannot be used here"),
    ("gradcheck-tol-nan", "gradcheck --dataset iris --tol nan", "--tol: must be a finite"),
    ("gradcheck-tol-negative", "gradcheck --dataset iris --tol -1", "--tol: must be >= 0"),
    ("gradcheck-temperature-zero", "gradcheck --dataset iris --temperature 0", "temperature"),
    ("peer-timeout-nan", "train --peer-timeout nan --out {o}", "--peer-timeout: must be a finite"),
    ("peer-timeout-inf", "train --peer-timeout inf --out {o}", "--peer-timeout: must be a finite"),
    ("peer-timeout-negative", "train --peer-timeout -1 --out {o}", "--peer-timeout: must be > 0"),
    ("peer-timeout-zero", "sweep --peer-timeout 0 --out {o}", "--peer-timeout: must be > 0"),
    ("num-processes-zero", "train --num-processes 0 --out {o}", "--num-processes: must be >= 1"),
    ("process-id-negative", "train --process-id -1 --out {o}", "--process-id: must be >= 0"),
    ("process-id-without-a-job", "train --dataset iris --process-id 3 --out {o}",
     "without a multi-process job"),
    ("devices-zero", "train --devices 0 --out {o}", "--devices"),
    ("devices-more-than-exist", "train --dataset iris --devices 4096 --out {o}", "4096 devices"),
    # float settings a float32 would turn into 0 or inf
    ("lr-below-float32", "train --lr 1e-320 --out {o}", "float32"),
    ("temperature-above-float32", "train --temperature 1e308 --out {o}", "float32"),
    ("l2-above-float32", "train --l2 1e39 --out {o}", "float32"),
    ("step-gamma-below-float32", "train --schedule step --step-gamma 1e-320 --out {o}", "float32"),
    # --out that cannot become a run folder
    ("out-under-a-file", "train --dataset iris --out {f}/good.csv/run", "is not a folder"),
    ("out-empty", ["train", "--dataset", "iris", "--out", ""], "--out needs a value"),
    ("resume-empty", ["train", "--resume", ""], "--resume needs a value"),
    ("sweep-grid-empty", ["sweep", "--grid", "", "--out", "{o}"], "--grid needs a value"),
    ("sweep-heatmap-empty", ["sweep", "--heatmap", "", "--out", "{o}"], "--heatmap needs a value"),
    ("predict-run-empty", ["predict", "--run", ""], "--run needs a value"),
    ("target-empty", ["train", "--dataset", "{f}/good.csv", "--target", "", "--out", "{o}"],
     "--target needs a value"),
    ("batch-size-huge", "train --batch-size 99999999999999999999 --out {o}", "batch size"),
    ("base-width-huge", "train --base-width 99999999999999999999 --out {o}", "base_width"),
    ("n-samples-huge", "train --dataset spirals --n-samples 99999999999999999999 --out {o}", "n_samples"),
    # sweeps: flags and grid files
    ("sweep-grid-width-word", "sweep --grid {f}/width_word.json --out {o}", "width: values must be positive integers, got 'wide'"),
    ("sweep-grid-lr-null", "sweep --grid {f}/lr_null.json --out {o}", "lr: values must be floats, got none"),
    ("sweep-grid-width-bool", "sweep --grid {f}/width_bool.json --out {o}", "width: values must be positive integers, got true"),
    ("sweep-grid-toml-lr-word", "sweep --grid {f}/lr_word.toml --out {o}", "lr: values must be floats, got 'x'"),
    ("sweep-grid-empty-axis", "sweep --grid {f}/lr_empty.json --out {o}", "lr is empty"),
    ("sweep-grid-scalar-axis", "sweep --grid {f}/lr_scalar.json --out {o}", "list of values"),
    ("sweep-grid-not-a-mapping", "sweep --grid {f}/a_list.json --out {o}", "mapping"),
    ("sweep-grid-unknown-axis", "sweep --grid {f}/colour.json --out {o}", "unknown sweep axis colour"),
    ("sweep-grid-seeds-zero", "sweep --grid {f}/seeds_zero.json --out {o}", "seeds"),
    ("sweep-grid-bad-json", "sweep --grid {f}/bad_json.json --out {o}", "not valid json"),
    ("sweep-grid-missing", "sweep --grid {f}/missing.json --out {o}", "not found"),
    ("sweep-grid-is-a-folder", "sweep --grid {f} --out {o}", "not found"),
    ("sweep-seeds-zero", "sweep --seeds 0 --out {o}", "--seeds: must be >= 1"),
    ("sweep-max-pad-ratio-below-1", "sweep --max-pad-ratio 0.5 --out {o}", "--max-pad-ratio: must be >= 1"),
    ("sweep-max-pad-ratio-nan", "sweep --max-pad-ratio nan --out {o}", "--max-pad-ratio: must be a finite"),
    ("sweep-data-devices-zero", "sweep --data-devices 0 --out {o}", "--data-devices"),
    ("sweep-lr-axis-below-float32", "sweep --lr 0.1,1e-320 --out {o}", "lr value 1e-320"),
    ("sweep-lr-axis-word", "sweep --lr 0.1,fast --out {o}", "--lr"),
    ("sweep-depth-zero", "sweep --depth 0 --out {o}", "depth"),
    ("sweep-width-not-int", "sweep --width 2.5 --out {o}", "--width"),
    ("sweep-width-without-hidden", "sweep --hidden none --width 2,4 --out {o}", "hidden layers"),
    ("sweep-heatmap-unknown-axis", "sweep --lr 0.1,0.2 --width 2,4 --heatmap lr,colour --out {o}",
     "unknown heatmap axis 'colour'"),
    ("sweep-heatmap-not-swept", "sweep --lr 0.1,0.2 --heatmap lr,width --out {o}", "not swept"),
    ("sweep-heatmap-same-axis", "sweep --lr 0.1,0.2 --heatmap lr,lr --out {o}", "different axes"),
    ("sweep-heatmap-one-axis", "sweep --lr 0.1,0.2 --heatmap lr --out {o}", "two axis"),
    ("sweep-depth-huge", "sweep --depth 99999999999999999999 --out {o}", "at most 1024 hidden layers"),
    ("sweep-seeds-huge", "sweep --seeds 99999999999999999999 --out {o}", "at most 1000000 seeds"),
    ("sweep-too-many-models", "sweep --lr 0.1,0.2 --seeds 600000 --out {o}", "1200000 models"),
    ("sweep-resume-with-other-flags", "sweep --resume {r}/good --lr 0.5", "--lr cannot be combined"),
    # a temperature where it has no effect (mse, huber): was silently ignored
    ("temperature-on-regression", "train --dataset diabetes --temperature 2 --out {o}",
     "temperature 2: the temperature scales the cross-entropy's softmax and has no effect on the mse loss"),
    ("temperature-with-mse-on-classes", "train --dataset iris --loss mse --temperature 0.5 --out {o}",
     "no effect on the mse loss"),
    ("sweep-temperature-on-regression", "sweep --dataset diabetes --temperature 1,2 --out {o}",
     "temperature 2: the temperature scales"),
    ("gradcheck-temperature-with-huber", "gradcheck --dataset iris --loss huber --temperature 3",
     "no effect on the huber loss"),
    # a value listed twice in a sweep axis: was trained twice under one label
    ("sweep-lr-repeated", "sweep --lr 0.1,0.1 --out {o}", "sweep axis lr lists 0.1 more than once"),
    ("sweep-width-repeated", "sweep --width 16,32,16 --out {o}", "sweep axis width lists 16 more than once"),
    ("sweep-lr-repeated-spelling", "sweep --lr 0.1,0.10 --out {o}", "lists 0.1 more than once"),
    # sizes beyond any machine's memory (hundreds of GiB): one error before allocating
    ("hidden-beyond-memory", "train --hidden 2000000000 --out {o}", "needs at least"),
    ("n-samples-beyond-memory", "train --dataset teacher --n-samples 2000000000 --out {o}",
     "ask for fewer rows (--n-samples)"),
    ("sweep-width-beyond-memory", "sweep --width 16,2000000000 --out {o}", "needs at least"),
]


@pytest.mark.parametrize("argv,keyword", [pytest.param(a, k, id=i) for i, a, k in BAD])
def test_bad_input_one_line_exit_2_nothing_compiled(argv, keyword, files, runs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    fill = lambda s: s.format(f=files, r=runs, o=out_dir)
    argv = [fill(a) for a in (argv.split() if isinstance(argv, str) else argv)]
    traces = T.trace_count()
    snapshot = {p: p.stat().st_mtime_ns for p in Path(runs).rglob("*") if p.is_file()}
    rc, out, err = run_main(argv, capsys)
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert keyword.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in err
    assert T.trace_count() == traces, "a training program was compiled for bad input"
    assert not out_dir.exists(), "a run folder was created for bad input"
    after = {p: p.stat().st_mtime_ns for p in Path(runs).rglob("*") if p.is_file()}
    assert after == snapshot, "bad input modified an existing run folder"


def test_bad_input_table_is_large_enough():
    assert len(BAD) >= 50
    assert len({i for i, _, _ in BAD}) == len(BAD)


@pytest.mark.parametrize("d", [
    {"train": {"learning_rate": 0.1}},
    {"model": {"hiden": [8]}},
    {"data": {"dataset": "iris", "colour": "red"}},
    {"optimizer": "adam"},
])
def test_config_unknown_key_is_config_error(d):
    with pytest.raises(ConfigError, match="unknown"):
        RunConfig.from_dict(d)


def test_python_api_raises_typed_errors(files, tmp_path):
    with pytest.raises(ConfigError):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError):
        ModelConfig(hidden=(8, 0))
    with pytest.raises(DataError, match="non-finite"):
        load_dataset(DataConfig(dataset=str(files / "nan.csv")))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(DataConfig(dataset=str(files / "truncated.npz")))
    with pytest.raises(ConfigError, match="unknown optimizer"):
        train_run(RunConfig(data=DataConfig(dataset="iris"),
                            train=TrainConfig(optimizer="nope")), tmp_path / "x")
    with pytest.raises(CheckpointError):
        ckpt.read_checkpoint(files / "garbage.npz")
    assert not (tmp_path / "x").exists()
    for cls in (ConfigError, DataError, CheckpointError):
        assert issubclass(cls, JaxmlpError)


def test_constant_column_is_warned_in_one_line(tmp_path, capsys):
    csv = tmp_path / "const.csv"
    rows = "".join(f"{i % 7},{3},{i % 2}\n" for i in range(40))
    csv.write_text("a,c,label\n" + rows)
    with pytest.warns(Warning, match="constant"):
        load_dataset(DataConfig(dataset=str(csv)))
    # The CLI shows it as one 'warning:' line; an optimizer name is checked after the data is
    # loaded (and before any compile), so this sees the warning without training.
    rc, out, err = run_main(["train", "--dataset", csv, "--optimizer", "nope", "--out",
                             tmp_path / "o"], capsys)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 2, err
    assert lines[0].startswith("warning: ") and "constant feature column" in lines[0]
    assert lines[1].startswith("error: unknown optimizer")


# --------------------------------------------------------------------------- 2. divergence
def test_divergence_names_epoch_keeps_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "div"
    rc, stdout, err = run_main(["train", "--dataset", "diabetes", "--hidden", "8", "--activation",
                                "relu", "--lr", "10", "--epochs", "20", "--checkpoint-every", "1",
                                "--quiet", "--out", out], capsys)
    assert rc != 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training diverged"), err
    assert "epoch " in lines[0] and "step " in lines[0] and "lower learning rate" in lines[0]
    assert "--lr 1" in lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] and summary["diverged_step"] >= 0
    leaves, meta = leaves_of(out)
    assert meta["epoch"] == summary["checkpoint_epoch"] < summary["epochs_run"]
    state = ckpt.restore_state(_template(out), leaves)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in _leaves(state["params"]))
    assert not bool(state["diverged"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] is None  # the diverged epoch is recorded, as null


def _leaves(tree):
    import jax
    return jax.tree.leaves(tree)


def _template(run_dir):
    """A freshly built train state of a run folder's config (for restore_state)."""
    from jaxmlp.data import load_splits
    from jaxmlp.runs.folder import load_run_config
    cfg = load_run_config(run_dir)
    return T.prepare(load_splits(cfg.data), cfg.model, cfg.train).state


# --------------------------------------------------------------------------- 3. checkpoints
def _save(path, value, epoch):
    state = {"w": np.full((3, 2), value, np.float32), "k": np.arange(2, dtype=np.uint32)}
    ckpt.save_checkpoint(path, state, config={"c": epoch}, epoch=epoch,
                         history={"epoch": list(range(1, epoch + 1))})
    return state


def test_checkpoint_roundtrip_atomic_and_checksummed(tmp_path):
    p = tmp_path / "checkpoint.npz"
    _save(p, 1.0, 1)
    s2 = _save(p, 2.0, 2)
    leaves, meta = ckpt.read_checkpoint(p)
    assert meta["epoch"] == 2 and meta["config"] == {"c": 2} and len(meta["sha256"]) == 64
    assert all(np.array_equal(a, b) and a.dtype == b.dtype
               for a, b in zip(leaves, [s2["k"], s2["w"]]))
    assert ckpt.read_checkpoint(ckpt.previous_path(p))[1]["epoch"] == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["checkpoint.npz", "checkpoint.prev.npz"]
    mode = p.stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask(), oct(mode)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def _rewrite_leaf(path):
    """Change one array inside a checkpoint but keep its meta (and so its old checksum)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["leaf_00001"] = arrays["leaf_00001"] + 1
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage", ["truncate", "checksum", "zero-bytes", "delete"])
def test_corrupt_checkpoint_falls_back_to_previous_with_warning(tmp_path, damage):
    p = tmp_path / "checkpoint.npz"
    _save(p, 1.0, 1)
    _save(p, 2.0, 2)
    if damage == "truncate":
        truncate(p, 0.7)
    elif damage == "checksum":
        _rewrite_leaf(p)
    elif damage == "zero-bytes":
        p.write_bytes(b"")
    else:
        p.unlink()
    with pytest.raises(CheckpointError, match="checksum" if damage == "checksum" else "checkpoint"):
        ckpt.read_checkpoint(p)
    with pytest.warns(ckpt.CheckpointFallbackWarning, match="previous checkpoint"):
        leaves, meta = ckpt.load_checkpoint(p)
    assert meta["epoch"] == 1 and np.all(leaves[1] == 1.0)


def test_corrupt_checkpoint_without_previous_is_an_error(tmp_path):
    p = tmp_path / "checkpoint.npz"
    _save(p, 1.0, 1)
    truncate(p)
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        ckpt.load_checkpoint(p)
    _save(tmp_path / "b.npz", 1.0, 1)
    _save(tmp_path / "b.npz", 2.0, 2)
    truncate(tmp_path / "b.npz")
    _rewrite_leaf(tmp_path / "b.prev.npz")
    with pytest.raises(CheckpointError, match="previous one is unusable"):
        ckpt.load_checkpoint(tmp_path / "b.npz")


def test_restore_rejects_mismatched_structure():
    tmpl = {"a": np.zeros((2, 2), np.float32), "b": np.zeros((), np.int32)}
    with pytest.raises(CheckpointError, match="arrays"):
        ckpt.restore_state(tmpl, [np.zeros((2, 2), np.float32)])
    with pytest.raises(CheckpointError, match="shape"):
        ckpt.restore_state(tmpl, [np.zeros((3, 2), np.float32), np.zeros((), np.int32)])
    with pytest.raises(CheckpointError, match="dtype"):
        ckpt.restore_state(tmpl, [np.zeros((2, 2), np.float64), np.zeros((), np.int32)])


def test_checkpoint_every_n_epochs_and_contents(tmp_path, capsys, monkeypatch):
    saved = []
    real = ckpt.save_checkpoint

    def spy(path, state, **kw):
        saved.append(kw["epoch"])
        return real(path, state, **kw)
    monkeypatch.setattr(ckpt, "save_checkpoint", spy)
    out = tmp_path / "every"
    rc, _, err = run_main(["train", "--dataset", "iris", "--hidden", "4", "--batch-size", "32",
                           "--epochs", "7", "--checkpoint-every", "3", "--seed", "5", "--quiet",
                           "--out", out], capsys)
    assert rc == 0, err
    assert saved == [3, 6, 7]
    leaves, meta = ckpt.read_checkpoint(out / ckpt.CHECKPOINT_NAME)
    assert meta["epoch"] == 7 and meta["history"]["epoch"] == list(range(1, 8))
    assert RunConfig.from_dict(meta["config"]).train.seed == 5
    assert meta["extra"]["normalizer"]["task"] == "classification"
    state = ckpt.restore_state(_template(out), leaves)
    # the RNG state is (config seed, checkpoint epoch): both asserted above
    assert int(state["epoch"]) == 7 and int(state["step"]) == 7 * 4
    assert ckpt.read_checkpoint(out / "checkpoint.prev.npz")[1]["epoch"] == 6


def test_failed_atomic_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


# --------------------------------------------------------------------------- 3/4. signals, resume
EPOCHS = 50
RUN_ARGS = ["train", "--dataset", "digits", "--hidden", "16", "--batch-size", "32", "--epochs",
            str(EPOCHS), "--checkpoint-every", "1", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in-process) every interrupted one must reproduce bit for bit."""
    require_cpu_backend()  # across processes: a CPU guarantee
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(RUN_ARGS + ["--out", str(out)]) == 0
    return out


def _start(out):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([JAXMLP, *RUN_ARGS, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(proc, out, min_epoch, timeout=120.0):
    """Poll until the run's checkpoint has ``epoch >= min_epoch``; return that epoch."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, f"run ended early: {proc.communicate()}"
        try:
            epoch = ckpt.read_checkpoint(out / ckpt.CHECKPOINT_NAME)[1]["epoch"]
            if epoch >= min_epoch:
                return epoch
        except CheckpointError:
            pass  # not written yet (or between the two renames)
        time.sleep(0.003)
    proc.kill()
    pytest.fail("no checkpoint appeared")


def _assert_same_as_reference(run_dir, reference):
    a, ma = leaves_of(reference)
    b, mb = leaves_of(run_dir)
    assert ma["epoch"] == mb["epoch"] == EPOCHS
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and np.array_equal(x, y), f"leaf {i} differs"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert (run_dir / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    csv_epochs = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert csv_epochs == ["epoch"] + [str(e) for e in range(1, EPOCHS + 1)]


def test_sigkill_then_resume_is_bit_identical(reference, tmp_path):
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_checkpoint(proc, out, 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    epoch = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_NAME)[1]["epoch"]
    assert 1 <= epoch < EPOCHS and not (out / "summary.json").exists()
    r = subprocess.run([JAXMLP, "train", "--resume", str(out), "--quiet"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "test_accuracy=" in r.stdout
    _assert_same_as_reference(out, reference)


def test_sigterm_saves_checkpoint_exit_130_and_resumes(reference, tmp_path, capsys):
    out = tmp_path / "terminated"
    proc = _start(out)
    _wait_for_checkpoint(proc, out, 2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0], stderr
    assert f"jaxmlp train --resume {out}" in lines[0] and "Traceback" not in stderr
    epoch = ckpt.read_checkpoint(out / ckpt.CHECKPOINT_NAME)[1]["epoch"]
    assert 2 <= epoch < EPOCHS and f"epoch {epoch}" in lines[0]
    assert not (out / "summary.json").exists()

    # A copy whose newest checkpoint is truncated resumes from checkpoint.prev.npz, with a
    # one-line warning, and still ends bit-identical (per-epoch data order is (seed, epoch)).
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    truncate(damaged / ckpt.CHECKPOINT_NAME)
    rc, _, err = run_main(["train", "--resume", damaged, "--quiet"], capsys)
    assert rc == 0, err
    assert err.startswith("warning: ") and "previous checkpoint" in err and len(err.splitlines()) == 1
    _assert_same_as_reference(damaged, reference)

    rc, _, err = run_main(["train", "--resume", out, "--quiet"], capsys)
    assert rc == 0 and err == ""
    _assert_same_as_reference(out, reference)


def test_sigint_in_process_stops_at_chunk_boundary(tmp_path, capsys, monkeypatch):
    """The signal flag is checked between chunks: deliver SIGINT from the first callback."""
    import jaxmlp.runs.folder as R
    real = R.train_loop
    sent = {}

    def loop(run, epochs, callback=None, **kw):
        def cb(state, history):
            if not sent:
                sent["at"] = int(state["epoch"])
                os.kill(os.getpid(), signal.SIGINT)
            callback(state, history)
        return real(run, epochs, callback=cb, **kw)
    monkeypatch.setattr(R, "train_loop", loop)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "int"
    rc, _, err = run_main(["train", "--dataset", "iris", "--hidden", "4", "--batch-size", "32",
                           "--epochs", "3", "--checkpoint-every", "1", "--quiet", "--out", out],
                          capsys)
    assert rc == 130 and err.startswith("interrupted: SIGINT") and "--resume" in err
    assert ckpt.read_checkpoint(out / ckpt.CHECKPOINT_NAME)[1]["epoch"] == sent["at"]
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_resume_before_first_checkpoint_starts_over(tmp_path, capsys):
    out = tmp_path / "early"
    cfg = RunConfig(data=DataConfig(dataset="iris"), model=ModelConfig(hidden=(4,)),
                    train=TrainConfig(epochs=2, batch_size=32, checkpoint_every=1))
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))  # killed while compiling
    rc, _, err = run_main(["train", "--resume", out, "--quiet"], capsys)
    assert rc == 0 and err.startswith("warning: ") and "no checkpoint yet" in err
    assert ckpt.read_checkpoint(out / ckpt.CHECKPOINT_NAME)[1]["epoch"] == 2


# --------------------------------------------------------------------------- 5. fuzzing
FIELDS = {"data": [f for f in DataConfig.__dataclass_fields__],
          "model": [f for f in ModelConfig.__dataclass_fields__],
          "train": [f for f in TrainConfig.__dataclass_fields__]}
CHOICES = ["digits", "iris", "tanh", "relu", "auto", "ce", "mse", "sgd", "adam", "cosine",
           "autodiff", "manual", "float32", "bfloat16", "classification", "regression", "sp", "mup"]

json_scalar = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, -1, 2**31 - 1, 2**31, 2**32, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 0.5, 0.99999, 1.0, 1e308]),
    st.text(max_size=12), st.sampled_from(CHOICES))
json_value = st.recursive(json_scalar, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)), max_leaves=8)


@st.composite
def section(draw, name):
    keys = st.one_of(st.sampled_from(FIELDS[name]), st.text(max_size=10))
    return draw(st.dictionaries(keys, json_value, max_size=6))


run_dicts = st.one_of(
    st.fixed_dictionaries({}, optional={"data": st.one_of(section("data"), json_value),
                                        "model": st.one_of(section("model"), json_value),
                                        "train": st.one_of(section("train"), json_value)}),
    st.dictionaries(st.text(max_size=8), json_value, max_size=3),
    json_value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_dicts)
def test_fuzz_config_from_dict_valid_or_config_error(d):
    try:
        cfg = RunConfig.from_dict(d)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


NUMERIC_FLAGS = ["--lr", "--temperature", "--momentum", "--l2", "--val-fraction",
                 "--test-fraction", "--noise", "--step-gamma", "--epochs", "--batch-size", "--seed",
                 "--checkpoint-every", "--patience", "--warmup-epochs", "--step-every",
                 "--n-samples", "--split-seed", "--hidden"]
number_text = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-1e400", "nan", "-inf", "0x10", "1_000", " 3 ", "1,2", "",
                     "0", "-0", "00", "1e-50", "9" * 5000]))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NUMERIC_FLAGS), number_text)
def test_fuzz_cli_number_parsing(flag, text):
    parser = build_parser()
    try:
        a = parser.parse_args(["train", f"{flag}={text}"])
        cfg = config_from_args(a)
    except (_UsageError, ConfigError) as e:
        assert "\n" not in " ".join(str(e).split())
        return
    assert isinstance(cfg, RunConfig)
    for v in (cfg.train.lr, cfg.train.temperature, cfg.train.l2):
        assert math.isfinite(v)
