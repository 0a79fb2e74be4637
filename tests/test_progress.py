"""Live progress: in-chunk step reports (observe only: params bit-identical), their count and
values against the compiled run's epoch losses, no recompile when their interval changes,
never stored in the compile cache; the CLI's steps.jsonl, bar phases in a real terminal, and
``jaxmlp watch``."""
from __future__ import annotations

import json
import os
import pty
import fcntl
import select
import shutil
import struct
import subprocess
import sys
import termios

import jax
import numpy as np
import pytest

import jaxmlp
from jaxmlp import DataConfig, ModelConfig, TrainConfig
from jaxmlp.cli import main
from jaxmlp.errors import ConfigError
from jaxmlp.runs.watch import render, snapshot, sparkline
from jaxmlp.training import aot_cache, steplog

JAXMLP = shutil.which("jaxmlp") or os.path.join(os.path.dirname(sys.executable), "jaxmlp")
MODEL = ModelConfig(hidden=(32,))
TRAIN = TrainConfig(epochs=4, batch_size=128, lr=0.1)


@pytest.fixture(scope="module")
def digits():
    return jaxmlp.load_splits(DataConfig(dataset="digits"))


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_step_reports_observe_only_and_match_the_epoch_losses(digits):
    p0, h0 = jaxmlp.fit(digits, model=MODEL, train=TRAIN)
    seen = []
    p1, h1 = jaxmlp.fit(digits, model=MODEL, train=TRAIN, log_every=1,
                        on_step=lambda s, loss: seen.append(s))
    assert _same(p0, p1)                                    # bit-identical params
    np.testing.assert_array_equal(h0["train_loss"], h1["train_loss"])
    nb = -(-len(digits.y_train) // TRAIN.batch_size)        # 10 steps an epoch, last padded
    steps = h1["steps"]
    np.testing.assert_array_equal(steps["step"], np.arange(1, TRAIN.epochs * nb + 1))
    assert sorted(seen) == steps["step"].tolist()
    # each epoch's train loss is the example-weighted mean of its steps' batch losses
    rows = np.minimum(TRAIN.batch_size,
                      len(digits.y_train) - TRAIN.batch_size * np.arange(nb)).astype(float)
    per_epoch = (steps["loss"].reshape(TRAIN.epochs, nb) * rows).sum(1) / rows.sum()
    np.testing.assert_allclose(per_epoch, h1["train_loss"], rtol=1e-6)


def test_report_interval_is_traced_not_compiled(digits):
    _, h = jaxmlp.fit(digits, model=MODEL, train=TRAIN, log_every=7)
    before = jaxmlp.trace_count()
    _, h2 = jaxmlp.fit(digits, model=MODEL, train=TRAIN, log_every=3)
    assert jaxmlp.trace_count() == before                 # same program, another interval
    assert h["steps"]["step"].tolist() == list(range(7, 41, 7))
    assert h2["steps"]["step"].tolist() == list(range(3, 41, 3))
    l7, l3 = (dict(zip(x["steps"]["step"].tolist(), x["steps"]["loss"])) for x in (h, h2))
    assert set(l7) & set(l3) == {21} and l7[21] == l3[21]    # the same step, the same loss


def test_step_logging_programs_are_never_stored(digits, monkeypatch):
    stored = []
    real = aot_cache.store
    monkeypatch.setattr(aot_cache, "store", lambda name, *a: (stored.append(name), real(name, *a)))
    jaxmlp.clear_caches()
    model = ModelConfig(hidden=(23,))                       # a shape no other test compiles
    jaxmlp.fit(digits, model=model, train=TRAIN, log_every=5)
    assert "chunk" not in stored                            # its callback lives in this process
    jaxmlp.fit(digits, model=model, train=TRAIN)
    assert "chunk" in stored                                # the plain program is kept


def test_auto_interval_and_long_runs(digits):
    assert steplog.auto_every(1e-3) == 250 and steplog.auto_every(1.0) == 1
    assert steplog.auto_every(0.0) == 1
    assert steplog.is_long(steplog.ASSUMED_FLOPS_PER_S * steplog.LONG_RUN_S)
    assert not steplog.is_long(steplog.ASSUMED_FLOPS_PER_S * steplog.LONG_RUN_S * 0.99)
    from jaxmlp.training import prepare
    short = prepare(digits, MODEL, TRAIN, log_every="long")
    assert not short.spec.step_log                            # 4 epochs of digits: seconds
    # long, but in steps of microseconds: its chunks return often enough, no reports
    assert not prepare(digits, MODEL, TRAIN.replace(epochs=10**6), log_every="long").spec.step_log
    big = ModelConfig(hidden=(1024, 1024))                    # ~0.8 ms steps estimated
    long = prepare(digits, big, TRAIN.replace(epochs=10**5), log_every="long")
    assert long.spec.step_log == "step" and long.log_auto
    with pytest.raises(ConfigError, match="log_every"):
        prepare(digits, MODEL, TRAIN, log_every=0)


def test_cli_writes_steps_jsonl_and_watch_reads_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--hidden", "16", "--log-every", "4", "--out",
                 str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(4, 31, 4))
    assert all(r["epoch"] == pytest.approx(r["step"] / 10) and r["loss"] > 0 for r in rows)
    assert all(b["time_s"] >= a["time_s"] >= 0 for a, b in zip(rows, rows[1:]))
    capsys.readouterr()
    assert main(["watch", str(out)]) == 0
    text = capsys.readouterr().out
    assert "finished, epoch 3 of 3 (100%)" in text and "last step report: step 28" in text
    assert "train_loss" in text and "summary: test_accuracy=" in text


def test_cli_bad_log_every_and_watch_folder(tmp_path, capsys):
    for bad in ("0", "-3", "x", ""):
        assert main(["train", "--log-every", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "--log-every" in err[0]
    assert main(["watch", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not a run folder" in err[0]


def test_watch_render_of_a_running_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"data": {"dataset": "digits"}, "model": {"hidden": [8]}, "train": {"epochs": 10}}))
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e, "train_loss": 1.0 / e}) + "\n" for e in (1, 2, 3)))
    (tmp_path / "steps.jsonl").write_text(
        json.dumps({"step": 35, "epoch": 3.5, "loss": 0.3, "time_s": 1.2}) + "\n{\"step\": 4")
    snap = snapshot(tmp_path)
    assert len(snap["steps"]) == 1 and snap["summary"] is None      # the torn line is skipped
    text = render(snap)
    assert "running (or stopped), epoch 3.5 of 10 (35%)" in text
    assert "train_loss" in text and "last 0.3333" in text
    assert sparkline([3, 2, 1]) == "█▅▁" and sparkline([None, float("nan")]) == ""
    assert len(sparkline(range(100), width=10)) == 10


def test_bar_shows_its_phases_in_a_terminal(tmp_path):
    """A real pseudo-terminal, as a user's: the bar names loading, compiling and training."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    env = dict(os.environ, COLUMNS="120")
    proc = subprocess.Popen([JAXMLP, "train", "--epochs", "3", "--hidden", "12", "--log-every",
                             "5", "--out", str(tmp_path / "run")], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, text
    for phase in ("loading data", "compiling", "training (", "epochs"):
        assert phase in text, (phase, text)
    assert "digits: test_accuracy=" in text


def test_epoch_level_reports_carry_the_epoch_losses(digits, monkeypatch):
    """Small steps report at epoch ends ("auto" picks the level by the estimated step time):
    one report per epoch here, at its last step, with exactly that epoch's train loss."""
    monkeypatch.setattr(steplog, "STEP_LEVEL_MIN_S", 1e9)       # every step counts as small
    monkeypatch.setattr(steplog, "ASSUMED_FLOPS_PER_S", 1.0)     # a first interval of 1 step
    from jaxmlp.training import prepare
    assert prepare(digits, MODEL, TRAIN, log_every="auto").spec.step_log == "epoch"
    p0, h0 = jaxmlp.fit(digits, model=MODEL, train=TRAIN)
    p1, h1 = jaxmlp.fit(digits, model=MODEL, train=TRAIN, log_every="auto")
    assert _same(p0, p1)
    assert h1["steps"]["step"].tolist() == [10, 20, 30, 40]
    np.testing.assert_array_equal(h1["steps"]["loss"], h1["train_loss"])


def test_sweep_progress_counts_live_stopped_and_diverged(digits):
    class Seen:
        def __init__(self):
            self.calls, self.counts = [], []

        def __call__(self, epoch, program, n_programs):
            self.calls.append((epoch, program, n_programs))

        def models(self, live, stopped, diverged):
            self.counts.append((live, stopped, diverged))

    seen = Seen()
    res = jaxmlp.sweep(digits, model=ModelConfig(hidden=(32,), activation="relu"),
                       train=TRAIN.replace(epochs=3), grid={"lr": [0.05, 1e3]}, progress=seen)
    assert [r["diverged"] for r in res.rows] == [False, True]
    assert seen.calls[-1] == (3, 0, 1) and len(seen.counts) == len(seen.calls)
    assert seen.counts[-1] == (1, 0, 1)                   # lr 1e3 diverged, lr 0.05 trains on
    # a plain function (no ``models``) still works
    got = []
    jaxmlp.sweep(digits, model=MODEL, train=TRAIN.replace(epochs=2), grid={"lr": [0.05]},
                 progress=lambda *a: got.append(a))
    assert got[-1] == (2, 0, 1)
