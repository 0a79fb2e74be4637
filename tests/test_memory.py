"""Sizes that cannot fit in memory are one error up front (jaxmlp.memory), and an allocation
failure that still happens is one error line, exit 2 (the CLI)."""
import numpy as np
import pytest

from helpers import run_main
from jaxmlp import fit, memory, sweep
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.data import make_spirals
from jaxmlp.errors import ConfigError

KIB = 1024


def _low_memory(monkeypatch, have: int):
    monkeypatch.setattr(memory, "available_bytes", lambda platform="cpu": have)


def test_available_bytes_is_what_linux_reports():
    have = memory.available_bytes()
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    assert have is not None and 0 < have <= info["MemTotal"]


def test_check_fits_compares_need_with_what_is_available(monkeypatch):
    _low_memory(monkeypatch, 1000)
    memory.check_fits(1000, "x", "hint")   # exactly what is there: fits
    with pytest.raises(ConfigError, match=r"^y needs at least 0\.0 GiB, .* available now; hint$"):
        memory.check_fits(1001, "y", "hint")
    _low_memory(monkeypatch, None)          # the system does not say: never an error
    memory.check_fits(10**18, "z", "hint")


def test_generated_rows_are_checked_before_generating(monkeypatch):
    _low_memory(monkeypatch, 24 * 1000)     # spirals hold >= 24 bytes per row
    assert make_spirals(1000).X.shape == (1000, 2)
    with pytest.raises(ConfigError, match="generated data set of 1001 rows"):
        make_spirals(1001)


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int32)


def test_fit_checks_its_state_and_data(monkeypatch):
    X, y = _data()
    _low_memory(monkeypatch, 4 * KIB)       # the data alone: 40 x 4 x 4 + 40 x 4 bytes
    with pytest.raises(ConfigError, match="training a 4-100-2 model needs at least"):
        fit((X, y), model=ModelConfig(hidden=(100,)), train=TrainConfig(epochs=1))
    _low_memory(monkeypatch, 64 * KIB)      # 4-10-2: 72 params, a few KiB of state
    fit((X, y), model=ModelConfig(hidden=(10,)), train=TrainConfig(epochs=1))


def test_sweep_checks_all_models_params_and_gradients(monkeypatch):
    X, y = _data()
    # 8 models of 4-w-2: params (4w + w + 2w + 2) floats each, twice (gradients), plus data
    params = sum(4 * w + w + 2 * w + 2 for w in (8, 16, 32, 64)) * 2
    need = 2 * 4 * params + X.nbytes + y.nbytes
    kw = dict(model=ModelConfig(hidden=(8,)), train=TrainConfig(epochs=1),
              grid={"width": [8, 16, 32, 64]}, seeds=2)
    _low_memory(monkeypatch, need - 1)
    with pytest.raises(ConfigError, match="a sweep of 8 models needs at least"):
        sweep((X, y), **kw)
    _low_memory(monkeypatch, need)
    assert len(sweep((X, y), **kw).rows) == 8


def test_cli_allocation_failure_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    class XlaRuntimeError(RuntimeError):
        pass

    def fail(*a, **k):
        raise XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 123456 bytes.\nmore")
    monkeypatch.setattr("jaxmlp.runs.folder.prepare", fail)
    rc, out, err = run_main(["train", "--dataset", "iris", "--out", tmp_path / "r"], capsys)
    assert rc == 2
    assert err.splitlines() == ["error: out of memory (data set or model too large for the "
                                "device): Out of memory allocating 123456 bytes."]


def test_cli_memory_error_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    def fail(*a, **k):
        raise MemoryError()
    monkeypatch.setattr("jaxmlp.runs.folder.prepare", fail)
    rc, out, err = run_main(["train", "--dataset", "iris", "--out", tmp_path / "r"], capsys)
    assert rc == 2 and err.splitlines() == [
        "error: out of memory (data set or model too large for this machine)"]
