"""End-to-end CLI runs of `jaxmlp sweep` and `jaxmlp gradcheck` (in-process, tiny)."""
import csv
import json
import os
import re
import signal

import numpy as np
import pytest

from helpers import cpu_env

from jaxmlp.cli import main


def test_sweep_cli_writes_the_folder(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = main(["sweep", "--dataset", "digits", "--n-samples", "300", "--width", "8,16",
               "--lr", "0.05,0.2", "--temperature", "1,2", "--seeds", "2", "--epochs", "3",
               "--batch-size", "64", "--out", str(out), "--quiet"])
    assert rc == 0
    line = capsys.readouterr().out
    assert "16 models" in line and "strategy=pad" in line
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 16
    # the best model is chosen on validation accuracy (the first of equals), its test accuracy shown
    m = re.search(r"best by val_accuracy: test_accuracy=(\d\.\d{4}) \(width=(\d+), depth=1, lr=(\S+), "
                  r"temperature=(\S+), l2=\S+, momentum=\S+, seed=(\d)\)", line)
    assert m, line
    val = [float(r["val_accuracy"]) for r in rows]
    best = rows[val.index(max(val))]
    assert (best["width"], best["lr"], best["temperature"], best["seed"]) == (
        m[2], m[3].rstrip(","), m[4].rstrip(","), m[5])
    assert m[1] == f"{float(best['test_accuracy']):.4f}"
    assert {(r["width"], r["lr"], r["temperature"], r["seed"]) for r in rows} == {
        (w, lr, t, s) for w in ("8", "16") for lr in ("0.05", "0.2") for t in ("1.0", "2.0") for s in ("0", "1")}
    for key in ("test_accuracy", "test_loss", "train_loss", "val_loss", "best_val_loss", "epochs_run", "wall_s"):
        assert key in rows[0]
    acc = np.array([float(r["test_accuracy"]) for r in rows])
    lr = np.array([float(r["lr"]) for r in rows])
    assert np.all((acc >= 0) & (acc <= 1.0)) and acc.max() > 0.5
    assert acc[lr == 0.2].mean() > acc[lr == 0.05].mean()  # 3 epochs: the larger step learns more
    h = np.load(out / "histories.npz")
    assert h["train_loss"].shape == (16, 3)
    assert np.all(np.isfinite(h["train_loss"]))
    with open(out / "histories.csv") as f:
        assert sum(1 for _ in f) == 1 + 16 * 3
    for png in ("heatmap.png", "curves.png", "vs_width.png", "vs_temperature.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "results.json").read_text())["info"]
    assert info["strategy"] == "pad" and len(info["programs"]) == 1
    assert info["programs"][0]["short_run"] is True  # 16 tiny models: compiled for a short run


def test_sweep_cli_fast_compile_flag(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = main(["sweep", "--dataset", "iris", "--width", "4,8", "--epochs", "2", "--out", str(out),
               "--quiet", "--no-fast-compile"])
    assert rc == 0
    info = json.loads((out / "results.json").read_text())["info"]
    assert [p["short_run"] for p in info["programs"]] == [False]


def test_sweep_cli_packing_flag_and_resume(tmp_path, capsys):
    """--packing pack: one program, each width at its own size; the checkpoint carries the
    packing, so a resume (here of a finished sweep) continues in the same layout."""
    out = tmp_path / "sw"
    args = ["sweep", "--dataset", "iris", "--width", "4,8", "--lr", "0.1,0.3", "--seeds", "2",
            "--epochs", "2", "--quiet"]
    assert main([*args, "--packing", "pack", "--out", str(out)]) == 0
    assert "strategy=pack, programs=1, flop efficiency=100%" in capsys.readouterr().out
    info = json.loads((out / "results.json").read_text())["info"]
    assert info["programs"][0]["layout"] == "pack" and info["packing"]["plan"] == [[4], [8]]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8 and {r["flop_efficiency"] for r in rows} == {"1.0"}
    assert json.loads((out / "config.json").read_text())["packing"] == "pack"
    before = (out / "results.csv").read_text()
    assert main(["sweep", "--resume", str(out), "--quiet"]) == 0
    assert "strategy=pack" in capsys.readouterr().out
    assert (out / "results.csv").read_text().split("\n")[1:] and \
        [r["test_loss"] for r in csv.DictReader(open(out / "results.csv"))] == \
        [r["test_loss"] for r in csv.DictReader(before.splitlines())]


@pytest.mark.parametrize("suffix,text", [
    (".json", '{"width": [4, 8], "lr": [0.1], "seeds": 2}'),
    (".toml", 'width = [4, 8]\nlr = [0.1]\nseeds = 2\n'),
])
def test_sweep_grid_file(tmp_path, capsys, suffix, text):
    grid = tmp_path / f"grid{suffix}"
    grid.write_text(text)
    out = tmp_path / "o"
    rc = main(["sweep", "--dataset", "iris", "--grid", str(grid), "--epochs", "2", "--out", str(out),
               "--quiet", "--max-pad-ratio", "1", "--packing", "pad"])
    assert rc == 0
    assert "4 models, strategy=group, programs=2" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["--width", "0,8"], "width"),
    (["--lr", "0.1,-1"], "learning rate"),
    (["--temperature", "0"], "temperature"),
    (["--seeds", "0"], "seeds"),
    (["--lr", "a,b"], "numbers"),
    (["--grid", "/nonexistent/grid.json"], "not found"),
    (["--heatmap", "width"], "two axis"),
    (["--data-devices", "3"], "data devices"),
    (["--data-devices", "0"], "data-devices"),
    (["--packing", "tight"], "packing"),
])
def test_sweep_bad_input_one_line_exit_2(tmp_path, capsys, argv, needle):
    rc = main(["sweep", "--dataset", "iris", "--epochs", "1", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and "\n" not in err and needle in err, repr(err)
    assert not (tmp_path / "x").exists()


def test_gradcheck_cli_passes_and_fails_on_tolerance(capsys):
    rc = main(["gradcheck", "--dataset", "iris", "--hidden", "5,4", "--activation", "sigmoid",
               "--temperature", "0.5", "--batch-size", "7"])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out
    assert sum(1 for l in out.splitlines() if l.strip().startswith(("0 ", "1 ", "2 "))) == 6
    rc = main(["gradcheck", "--dataset", "iris", "--hidden", "5", "--tol", "1e-30"])
    assert rc == 1 and "FAIL" in capsys.readouterr().out


def test_gradcheck_passes_where_gradients_are_round_off_small(tmp_path, capsys):
    """A constant input column (normalised to 0) leaves gradients of ~1e-13 whose float64
    round-off (~1e-17) looked like a 5e-5 relative error: a false FAIL (the CLI fuzzer's
    find). Below ``REL_FLOOR`` entries are compared absolutely; a wrong gradient still fails."""
    import numpy as np

    from jaxmlp.gradcheck import REL_FLOOR, _rel
    path = tmp_path / "const.npz"
    np.savez(path, X=np.ones((3, 1), np.float32), y=np.array([0, 1, 2]))
    rc = main(["gradcheck", "--dataset", str(path), "--hidden", "4", "--n-fd", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out, out
    assert _rel([2.8e-17 + 5e-13], [5e-13]) < 1e-6              # round-off on a tiny entry
    assert _rel([2e-9], [1e-9]) == 2 * 1e-9 / REL_FLOOR > 1e-6  # a wrong tiny entry fails
    assert _rel([2.0], [1.0]) == 2 / 3                          # relative above the floor


def test_sweep_killed_and_resumed_is_bit_identical(tmp_path):
    """SIGKILL a sweep mid-run, resume it, compare with an uninterrupted sweep bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    import time
    args = ["sweep", "--dataset", "digits", "--n-samples", "600", "--width", "8,32", "--lr", "0.05,0.2",
            "--seeds", "2", "--epochs", "60", "--batch-size", "16", "--checkpoint-every", "1",
            "--max-pad-ratio", "1", "--packing", "pad", "--quiet"]
    # every run in a fresh process, as a user runs them (the CLI splits the CPU into one device
    # per core before JAX starts; results are bit-identical for the same device layout)
    env = cpu_env(without_xla_flags=True)  # bit-identity across processes: a CPU guarantee
    cli = [sys.executable, "-m", "jaxmlp.cli"]
    ref = tmp_path / "ref"
    r = subprocess.run([*cli, *args, "--out", str(ref)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "killed"
    p = subprocess.Popen([*cli, *args, "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    ck = out / "sweep_checkpoint.npz"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        if ck.exists():
            from jaxmlp.runs.sweep_folder import load_sweep_checkpoint
            try:
                resume, _ = load_sweep_checkpoint(out)
            except Exception:  # being replaced right now
                time.sleep(0.05)
                continue
            progs = resume["programs"]
            if len(progs) == 2 and 0 < progs[-1]["epoch"] < 60:  # mid-way through program 2
                break
        time.sleep(0.05)
    assert p.poll() is None, "the sweep finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "results.csv").exists()
    r = subprocess.run([*cli, "sweep", "--resume", str(out), "--quiet"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = np.load(ref / "histories.npz"), np.load(out / "histories.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    ra = list(csv.DictReader(open(ref / "results.csv")))
    rb = list(csv.DictReader(open(out / "results.csv")))
    for x, y in zip(ra, rb):
        assert x["test_loss"] == y["test_loss"] and x["train_loss"] == y["train_loss"]


def test_train_cli_with_mup(tmp_path, capsys):
    rc = main(["train", "--dataset", "iris", "--hidden", "32", "--parametrization", "mup",
               "--base-width", "8", "--epochs", "3", "--quiet", "--out", str(tmp_path / "m")])
    assert rc == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert cfg["parametrization"] == "mup" and cfg["base_width"] == 8


def test_best_model_is_chosen_on_validation_data_only():
    from jaxmlp.runs.sweep_folder import best_model
    from jaxmlp.sweeps import SweepResult
    nan = float("nan")
    rows = [{"val_accuracy": v, "test_accuracy": t} for v, t in
            [(0.5, 0.99), (nan, 1.0), (0.9, 0.1), (0.9, 0.2)]]
    assert best_model(SweepResult(rows=rows, histories={})) == (2, "val_accuracy")
    reg = [{"val_loss": v, "test_mse": t} for v, t in [(0.3, 0.0), (0.1, 9.0), (nan, 0.0)]]
    assert best_model(SweepResult(rows=reg, histories={})) == (1, "val_loss")
    diverged = [{"val_loss": nan}, {"val_loss": float("inf")}]
    assert best_model(SweepResult(rows=diverged, histories={})) == (0, "val_loss")
    no_val = [{"train_loss": 2.0}, {"train_loss": 1.0}]
    assert best_model(SweepResult(rows=no_val, histories={})) == (1, "train_loss")


def test_sweep_refuses_a_folder_holding_a_run(tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["sweep", "--dataset", "iris", "--width", "4", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: output folder") and "already holds a run" in err
    assert f"--resume {out}" in err and "\n" not in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_sweep_sigint_saves_a_checkpoint_exits_130_and_resumes_identically(tmp_path, capsys,
                                                                          monkeypatch):
    """SIGINT between chunks (sent from the first chunk's callback): the sweep saves its
    checkpoint, exits 130 naming the resume command, restores the signal handler; the resumed
    sweep ends with the same histories, bit for bit, as one never interrupted."""
    import jaxmlp.runs.sweep_folder as SF
    args = ["sweep", "--dataset", "iris", "--width", "4,8", "--lr", "0.1,0.3", "--epochs", "6",
            "--batch-size", "32", "--checkpoint-every", "2", "--packing", "pad", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    real, sent = SF.sweep, {}

    def sweep(*a, on_chunk=None, **kw):
        def first_interrupts(snapshot):
            if not sent:
                sent["epoch"] = snapshot["programs"][-1]["epoch"]
                os.kill(os.getpid(), signal.SIGINT)
            on_chunk(snapshot)
        return real(*a, on_chunk=first_interrupts, **kw)
    monkeypatch.setattr(SF, "sweep", sweep)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "int"
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: SIGINT") and f"jaxmlp sweep --resume {out}" in err
    assert signal.getsignal(signal.SIGINT) is before
    resume, _ = SF.load_sweep_checkpoint(out)
    assert [p["epoch"] for p in resume["programs"]] == [sent["epoch"]] and 0 < sent["epoch"] < 6
    assert not (out / "results.csv").exists()
    monkeypatch.setattr(SF, "sweep", real)
    assert main(["sweep", "--resume", str(out), "--quiet"]) == 0
    a, b = np.load(tmp_path / "ref" / "histories.npz"), np.load(out / "histories.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert np.array_equal(a[k], b[k], equal_nan=True), k
