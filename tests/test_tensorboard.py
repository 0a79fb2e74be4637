"""TensorBoard event files (the tensorboard extra): what the CLI writes reads back as the
run's own metrics and step reports; a sweep gets one run per model; without the extra,
--tensorboard is one error line."""
from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest

from jaxmlp.cli import main
from jaxmlp.runs.tensorboard import model_name, tag

tbx = pytest.importorskip("tensorboardX", reason="the tensorboard extra is not installed")


def read_events(folder) -> dict:
    """``{tag: {step: value}}`` of every event file under ``folder`` (TFRecord framing:
    length, its CRC, the Event proto, its CRC)."""
    from tensorboardX.proto import event_pb2
    out: dict = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, {})[ev.step] = v.simple_value
    return out


def test_tags():
    assert tag("val_accuracy") == "val/accuracy" and tag("train_loss") == "train/loss"
    assert tag("lr") == "lr" and tag("test_mse") == "test/mse"
    assert model_name({"model": 3, "lr": 0.1, "width": 64, "seed": 1}, ["width", "lr", "seed"]) \
        == "model003_width=64_lr=0.1_seed=1"


def test_train_events_equal_the_run_files(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--hidden", "16", "--log-every", "5", "--tensorboard",
                 "--out", str(out), "--quiet"]) == 0
    ev = read_events(out / "tensorboard")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for key in ("train_loss", "val_loss", "val_accuracy", "test_accuracy", "lr"):
        assert ev[tag(key)] == pytest.approx({r["epoch"]: r[key] for r in rows}, rel=1e-6)
    steps = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines()]
    assert ev["train/step_loss"] == pytest.approx({s["step"]: s["loss"] for s in steps}, rel=1e-6)


def test_sweep_events_one_run_per_model(tmp_path):
    out = tmp_path / "sweep"
    assert main(["sweep", "--lr", "0.05,0.1", "--epochs", "2", "--hidden", "8", "--tensorboard",
                 "--out", str(out), "--quiet"]) == 0
    runs = sorted(p.name for p in (out / "tensorboard").iterdir())
    assert runs == ["model000_width=8_depth=1_lr=0.05_temperature=1_l2=0_momentum=0_seed=0",
                    "model001_width=8_depth=1_lr=0.1_temperature=1_l2=0_momentum=0_seed=0"] \
        or len(runs) == 2 and all(r.startswith(f"model00{i}_") for i, r in enumerate(runs))
    hist = np.load(out / "histories.npz")
    for i, name in enumerate(runs):
        ev = read_events(out / "tensorboard" / name)
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert ev[tag(key)] == pytest.approx({1: hist[key][i, 0], 2: hist[key][i, 1]},
                                                 rel=1e-6)


def test_missing_extra_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)     # import fails as if absent
    assert main(["train", "--tensorboard", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "tensorboard" in err[0]
    assert not (tmp_path / "r").exists()


def test_sweep_events_are_written_chunk_by_chunk(tmp_path):
    """``SweepEvents.update`` on ``sweep``'s snapshots: each call adds the epochs finished
    since the last (a model's skipped epochs and a repeated row are left out)."""
    from jaxmlp.runs.tensorboard import SweepEvents
    ev = SweepEvents(tmp_path, ["a", "b"])
    chunk = lambda loss, ran: {"train_loss": np.asarray(loss), "ran": np.asarray(ran)}
    prog = {"rows": [0, 1, 0], "chunks": [chunk([[1.0, 0.9], [2.0, 1.8], [1.0, 0.9]],
                                                [[True, True], [True, True], [True, True]])]}
    ev.update({"programs": [prog]})
    for r in ev.runs.values():
        r[0].w.flush()
    assert read_events(tmp_path / "tensorboard" / "a")["train/loss"] == pytest.approx({1: 1.0, 2: 0.9})
    prog["chunks"].append(chunk([[0.8, 0.7], [1.6, 9.9], [0.8, 0.7]],
                                [[True, True], [True, False], [True, True]]))
    ev.update({"programs": [prog]})
    ev.close()
    assert read_events(tmp_path / "tensorboard" / "a")["train/loss"] == pytest.approx(
        {1: 1.0, 2: 0.9, 3: 0.8, 4: 0.7})
    assert read_events(tmp_path / "tensorboard" / "b")["train/loss"] == pytest.approx(
        {1: 2.0, 2: 1.8, 3: 1.6})                      # epoch 4 did not run: not written
