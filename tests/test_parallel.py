"""Data parallelism over forced CPU devices and multi-process training on JAX's distributed
runtime (two processes on 127.0.0.1, gloo collectives)."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import FORCED_8, cpu_env, run_main

DP_SCRIPT = r"""
import json, sys, numpy as np, jax, jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
s = load_splits(DataConfig(dataset="digits", n_samples=500))
out = {}
for n in (1, 2, 8):
    p, h = jm.fit(s, model=ModelConfig(hidden=(32,)), train=TrainConfig(epochs=3, batch_size=64), devices=n)
    out[n] = {"W": [np.asarray(l["W"]).tolist() for l in p], "loss": h["train_loss"].tolist(),
              "acc": h["final"]["test_accuracy"], "train_loss": h["final"]["train_loss"]}
try:
    jm.fit(s, train=TrainConfig(epochs=1, batch_size=60), devices=8)
except jm.ConfigError as e:
    out["err"] = str(e)
print(json.dumps(out))
"""


def _run(code, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_data_parallel_on_8_forced_cpu_devices_matches_one_device():
    env = cpu_env(XLA_FLAGS=FORCED_8)
    p = _run(DP_SCRIPT, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for n in ("2", "8"):
        for a, b in zip(out["1"]["W"], out[n]["W"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[n]["loss"], out["1"]["loss"], rtol=1e-5)
        assert out[n]["acc"] == pytest.approx(out["1"]["acc"], abs=1e-6)
        # train metrics ignore the zero rows that pad the sharded training set
        assert out[n]["train_loss"] == pytest.approx(out["1"]["train_loss"], rel=1e-5)
    assert "divisible" in out["err"]


MP_SCRIPT = r"""
import json, os, sys, numpy as np
from jaxmlp.parallel import DistributedConfig, initialize
pid, n, port, crash = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
initialize(DistributedConfig(f"127.0.0.1:{port}", n, pid, peer_timeout_s=15))
import jax, jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
s = load_splits(DataConfig(dataset="digits", n_samples=500))
def cb(state, hist):
    if crash and pid == 1 and hist["epoch"][-1] >= 2:
        os._exit(9)  # a peer dies mid-run
epochs = 400 if crash else 3
p, h = jm.fit(s, model=ModelConfig(hidden=(32,)),
              train=TrainConfig(epochs=epochs, batch_size=64, checkpoint_every=1 if crash else 0),
              devices=jax.device_count(), callback=cb)
if pid == 0:
    print(json.dumps({"W": [np.asarray(l["W"]).tolist() for l in p], "loss": h["train_loss"].tolist(),
                      "procs": jax.process_count(), "devices": jax.device_count()}))
"""

SINGLE = r"""
import json, numpy as np, jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
s = load_splits(DataConfig(dataset="digits", n_samples=500))
p, h = jm.fit(s, model=ModelConfig(hidden=(32,)), train=TrainConfig(epochs=3, batch_size=64))
print(json.dumps({"W": [np.asarray(l["W"]).tolist() for l in p], "loss": h["train_loss"].tolist()}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: A data-parallel digits run (64-64-10, batch 128) on 4 devices: ``run()`` prepares it.
DP_SETUP = r"""
import json, re
import jaxmlp.training as T
import jaxmlp.training.spec as S
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits
from jaxmlp.parallel import mesh_for
from jaxmlp.training.compile import _chunk_inputs, jit_chunk, split_metrics_jit
s = load_splits(DataConfig(dataset="digits"))
run = lambda: T.prepare(s, ModelConfig(hidden=(64,)), TrainConfig(epochs=2, batch_size=128),
                        mesh=mesh_for(4))
"""

DP_HLO_SCRIPT = DP_SETUP + r"""
out, prepare = {}, run
for path, bound in (("per_epoch", 10**9), ("per_step", 0)):  # the two batch-gather paths
    S.GATHER_PER_STEP_ABOVE = bound
    run = prepare()
    assert run.spec.gather_per_step == (path == "per_step")
    inputs = _chunk_inputs(run.spec, run.state, run.spec.chunk_epochs, 0, run.spec.mesh)
    hlo = jit_chunk(run.spec).lower(run.state, run.hp, run.data, *inputs).compile().as_text()
    out[path] = re.findall(r"= (.*?) all-reduce(?:-start)?\(", hlo)
print(json.dumps(out))
"""


DP_EVAL_SCRIPT = DP_SETUP + r"""
run = run()
hlo = split_metrics_jit(run.spec).lower(run.state["params"], run.hp, run.data).compile().as_text()
rows = [int(r) for r in re.findall(r"= f32\[(\d+),\d+\]\S* dot\(", hlo)]
print(json.dumps({"splits": [len(s.X_train), len(s.X_val), len(s.X_test)], "dot_rows": rows}))
"""


def test_data_parallel_evaluation_splits_the_rows_over_the_devices():
    """Each of 4 devices evaluates a quarter of every split's rows (the compiled metrics
    program's products are ~n/4 rows long), instead of every device evaluating all of them."""
    p = _run(DP_EVAL_SCRIPT, env=cpu_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["dot_rows"] and set(out["dot_rows"]) == {-(-n // 4) for n in out["splits"]}


def test_data_parallel_steps_move_no_data_rows_between_devices():
    """Data parallelism on 4 forced CPU devices: the training rows are on every device, so a
    compiled step's only collectives are the gradient all-reduce (one tuple of the params'
    shapes) and the loss's (a scalar), on both batch-gather paths; no all-reduce carries
    rows (before: the whole f32[1280,64] training set and its s32[1280] labels every epoch)."""
    p = _run(DP_HLO_SCRIPT, env=cpu_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # the params' gradients (a weight's either way round), the loss and the evaluation's
    # partial sums (scalars: each device evaluates its share of the rows)
    params = {"f32[64,64]", "f32[64]", "f32[64,10]", "f32[10,64]", "f32[10]"}
    for path, shapes in out.items():
        parts = [{re.sub(r"/\*.*?\*/|\{.*?\}", "", t) for t in sh.strip("()").split(", ")}
                 for sh in shapes]
        assert all(p <= params | {"f32[]"} for p in parts), (path, shapes)
        assert sum(bool(p & params) for p in parts) == 1, (path, shapes)  # one gradient tuple


WATCHDOG_SCRIPT = r"""
import sys, time
from jaxmlp.parallel import Watchdog
dog = Watchdog(0.4)
time.sleep(1.2)          # a long first compile: not armed yet, no exit
print("survived the compile", flush=True)
dog.kick()               # the first chunk starts: armed
time.sleep(float(sys.argv[1]))
print("no exit", flush=True)
"""


def test_the_peer_watchdog_is_armed_by_the_first_chunk_not_during_the_compile():
    quiet = _run(WATCHDOG_SCRIPT, 0.1, timeout=60)  # progress within the timeout
    assert quiet.returncode == 0 and "survived the compile" in quiet.stdout
    hung = _run(WATCHDOG_SCRIPT, 3.0, timeout=60)   # then no progress: exit 3, one error line
    assert hung.returncode == 3 and "survived the compile" in hung.stdout
    assert "no exit" not in hung.stdout
    assert hung.stderr.startswith("error: training made no progress for 0s")


def test_tasks_of_a_launcher_without_a_multi_process_job_are_refused(tmp_path, capsys,
                                                                       monkeypatch):
    """``srun -n 4 jaxmlp train`` without a coordinator would start 4 lone "process 0" runs
    writing one folder: refused, exit 2, one error line, nothing written. One task (a Slurm
    array element, a batch script's own command) runs as usual."""
    from jaxmlp.parallel import launcher_tasks
    assert launcher_tasks({}) is None
    assert launcher_tasks({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}) is None  # batch script
    assert launcher_tasks({"SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}) is None
    assert launcher_tasks({"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2"}) == ("srun", 2, 4)
    assert launcher_tasks({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"})[1:] == (1, 2)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "2")
    out = tmp_path / "run"
    rc, _, err = run_main(["train", "--dataset", "xor", "--epochs", "1", "--out", out], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: this is task 2 of 4 started by srun") and not out.exists()


def _free_slurm_port() -> int:
    """A free port among the ones JAX's Slurm detection derives from the job id
    (``SLURM_JOB_ID % 4096 + 61440``)."""
    for port in range(61440 + os.getpid() % 2000, 65536):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in JAX's Slurm range")


def test_distributed_auto_forms_one_job_from_a_launchers_tasks(tmp_path):
    """Two tasks as ``srun -n 2`` starts them (Slurm's variables, node 127.0.0.1) with
    ``--distributed auto``: JAX's cluster detection joins them into one job; only process 0
    writes, and the run equals a one-process run."""
    port = _free_slurm_port()
    slurm = cpu_env(without_xla_flags=True, SLURM_JOB_ID=str(port - 61440),
                    SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2",
                    SLURM_STEP_NUM_TASKS="2", SLURM_STEP_NUM_NODES="1")
    train = ["train", "--dataset", "iris", "--hidden", "8", "--epochs", "6", "--batch-size", "16",
             "--quiet"]
    procs = [_cli([*train, "--distributed", "auto", "--out", str(tmp_path / f"task{i}")],
                  env=dict(slurm, SLURM_PROCID=str(i), SLURM_LOCALID=str(i))) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-1500:] + outs[1][1][-1500:]
    assert (tmp_path / "task0" / "summary.json").exists() and not (tmp_path / "task1").exists()
    single = subprocess.run([sys.executable, "-m", "jaxmlp.cli", *train, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=240, env=cpu_env(without_xla_flags=True))
    assert single.returncode == 0, single.stderr
    a = json.loads((tmp_path / "task0" / "summary.json").read_text())
    b = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)


def test_distributed_auto_without_a_cluster_is_one_error_line(tmp_path, capsys, monkeypatch):
    for var in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(var, raising=False)
    rc, _, err = run_main(["train", "--dataset", "xor", "--epochs", "1", "--distributed", "auto",
                           "--out", tmp_path / "r"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: --distributed auto: no multi-process job could be formed here")


def _launch(crash: bool):
    port = _free_port()
    env = cpu_env(without_xla_flags=True)
    procs = [subprocess.Popen([sys.executable, "-c", MP_SCRIPT, str(i), "2", str(port), "1" if crash else "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    return procs


def test_two_processes_equal_single_process_run():
    procs = _launch(crash=False)
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-2000:] + outs[1][1][-2000:]
    mp = json.loads(outs[0][0].strip().splitlines()[-1])
    assert mp["procs"] == 2 and mp["devices"] == 2
    single = _run(SINGLE)
    assert single.returncode == 0, single.stderr[-2000:]
    ref = json.loads(single.stdout.strip().splitlines()[-1])
    for a, b in zip(mp["W"], ref["W"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mp["loss"], ref["loss"], rtol=1e-5)


def test_crashed_peer_makes_the_survivor_exit_with_an_error():
    procs = _launch(crash=True)
    t0 = time.monotonic()
    out, err = procs[0].communicate(timeout=180)  # a hang would raise TimeoutExpired here
    procs[1].communicate(timeout=30)
    assert procs[1].returncode == 9
    assert procs[0].returncode != 0
    assert time.monotonic() - t0 < 150
    assert ("no progress" in err and "peer process" in err) or "another task died" in err, err[-3000:]


def _cli(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "jaxmlp.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_cli_train_two_processes_via_env_and_sweep_via_flags(tmp_path):
    base = cpu_env(without_xla_flags=True)
    # train: the standard JAX_* variables; only process 0 writes the run folder
    port = _free_port()
    train = ["train", "--dataset", "iris", "--hidden", "8", "--epochs", "6", "--batch-size", "16", "--quiet"]
    procs = [_cli(train + ["--out", str(tmp_path / f"mp{i}")],
                  env=dict(base, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                           JAX_PROCESS_ID=str(i))) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-1500:] + outs[1][1][-1500:]
    assert (tmp_path / "mp0" / "summary.json").exists() and not (tmp_path / "mp1").exists()
    single = subprocess.run([sys.executable, "-m", "jaxmlp.cli", *train, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=240, env=base)
    assert single.returncode == 0, single.stderr
    a = json.loads((tmp_path / "mp0" / "summary.json").read_text())
    b = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)
    # sweep: flags; the model axis is sharded over both processes' devices
    port = _free_port()
    sweep = ["sweep", "--dataset", "iris", "--width", "4,8", "--lr", "0.1,0.2", "--epochs", "3", "--quiet",
             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [_cli(sweep + ["--process-id", str(i), "--out", str(tmp_path / "sw")], env=base) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-1500:] + outs[1][1][-1500:]
    ref = subprocess.run([sys.executable, "-m", "jaxmlp.cli", *sweep[:10], "--out", str(tmp_path / "sw1")],
                         capture_output=True, text=True, timeout=240, env=base)
    assert ref.returncode == 0, ref.stderr
    import csv
    mp_rows = list(csv.DictReader(open(tmp_path / "sw" / "results.csv")))
    one_rows = list(csv.DictReader(open(tmp_path / "sw1" / "results.csv")))
    np.testing.assert_allclose([float(r["test_loss"]) for r in mp_rows],
                               [float(r["test_loss"]) for r in one_rows], rtol=1e-5)
