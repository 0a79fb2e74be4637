"""The persistent compile cache the commands use by default: where it lives, who may own it,
what a corrupted entry or a second process does, and that hyperparameter changes compile
nothing once the first run filled it (read from each run's own timing.json)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import cpu_env

from jaxmlp.training import compile_cache as cc
from jaxmlp.errors import ConfigError

JAXMLP = str(Path(sys.executable).with_name("jaxmlp"))
TINY = ["train", "--dataset", "iris", "--hidden", "8", "--epochs", "3", "--quiet"]


def _run(args, cache, out, extra_env=None):
    env = {**os.environ, "JAXMLP_COMPILE_CACHE": str(cache), **(extra_env or {})}
    r = subprocess.run([JAXMLP, *TINY, *args, "--out", str(out)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    return r, json.loads((out / "timing.json").read_text())


def _aot(cache):
    (version,) = cache.glob("v-*")  # this jaxmlp's folder
    return version / "jaxmlp-aot"


def _params(out):
    ck = np.load(out / "checkpoint.npz")
    return [ck[k] for k in sorted(ck.files) if k.startswith("leaf")]


def test_source_digest_covers_the_whole_package():
    import jaxmlp
    pkg, paths = cc.source_files()
    assert pkg == Path(jaxmlp.__file__).resolve().parent
    names = {p.relative_to(pkg).as_posix() for p in paths}
    assert {"__init__.py", "nn.py", "training/program.py", "training/compile_cache.py"} <= names
    assert {"training", "sweeps", "runs", "data", "backprop"} <= {n.split("/")[0] for n in names}


def test_resolve_order(monkeypatch, tmp_path):
    monkeypatch.delenv(cc.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.resolve(None) == (tmp_path / "xdg" / "jaxmlp" / "xla", False)
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cc.resolve(None)[0] == Path(os.path.expanduser("~")) / ".cache" / "jaxmlp" / "xla"
    monkeypatch.setenv(cc.ENV, str(tmp_path / "env"))
    assert cc.resolve(None) == (tmp_path / "env", True)
    assert cc.resolve(str(tmp_path / "flag")) == (tmp_path / "flag", True)
    assert cc.resolve(str(tmp_path / "flag"), disabled=True) == (None, True)
    for off in ("off", "OFF", "0", "none"):
        monkeypatch.setenv(cc.ENV, off)
        assert cc.resolve(None) == (None, True)


def test_folder_is_private_and_shared_folders_are_refused(tmp_path):
    folder = tmp_path / "new" / "cache"
    cc._private_folder(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        cc._private_folder(open_folder)


def test_default_folder_that_fails_is_a_warning_not_an_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.delenv(cc.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cc.enable_for_command(None) is None
    assert len(caught) == 1 and "running without a compile cache" in str(caught[0].message)
    with pytest.raises(ConfigError):
        cc.enable_for_command(str(blocker / "sub"))


def test_bad_size_cap_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv(cc.MAX_ENV, "lots")
    with pytest.raises(ConfigError, match=cc.MAX_ENV):
        cc._max_bytes()
    monkeypatch.setenv(cc.MAX_ENV, "1.5")
    assert cc._max_bytes() == int(1.5 * 2**20)


def test_hyperparameter_changes_compile_nothing_after_the_first_run(tmp_path):
    """lr, temperature, seed and epochs are traced: a second run with all of them changed
    loads every program from the cache (timing.json: compiled 0, every program a cache hit)."""
    cache = tmp_path / "cache"
    _, first = _run([], cache, tmp_path / "a")
    assert first["compiled"] >= 2 and first["cache_hits"] == 0
    _, again = _run(["--lr", "0.05", "--temperature", "2", "--seed", "7", "--epochs", "5"],
                    cache, tmp_path / "b")
    assert again["compiled"] == 0 and again["cache_hits"] == again["programs"] == first["programs"]
    for key in ("import_s", "data_s", "compile_s", "train_s", "write_s", "plot_s", "total_s"):
        assert again[key] >= 0.0
    assert again["total_s"] >= again["import_s"] + again["train_s"]


def test_second_run_loads_every_program_without_tracing(tmp_path):
    """jaxmlp's own entries (jaxmlp.training.aot_cache) are keyed stably across processes: a second
    identical run adds none, and its programs are all loaded."""
    cache = tmp_path / "cache"
    _run([], cache, tmp_path / "a")
    entries = sorted(p.name for p in _aot(cache).iterdir())
    assert len(entries) == 2  # the initialisation and the training chunk
    _, timing = _run(["--lr", "0.3"], cache, tmp_path / "b")
    assert sorted(p.name for p in _aot(cache).iterdir()) == entries
    assert timing["compiled"] == 0 and timing["cache_hits"] == timing["programs"] == 2


@pytest.mark.parametrize("which", ["jaxmlp", "jax"])
def test_corrupted_entry_is_a_warning_then_replaced(tmp_path, which):
    """A corrupted entry of either cache: one warning line per entry, the program compiled (or
    loaded from the other cache) again, the same results, and the entry written anew."""
    cache = tmp_path / "cache"
    _run([], cache, tmp_path / "a")
    aot = _aot(cache)
    if which == "jax":  # only JAX's entries: jaxmlp's are removed so that JAX's are read
        shutil.rmtree(aot)
        entries = sorted(cache.glob("v-*/*-cache"))
        expect = "warning: compile cache entry"
    else:
        entries = sorted(aot.glob("*.pkl"))
        expect = "warning: compiled program"
    assert len(entries) == 2
    for e in entries:
        e.write_bytes(b"garbage" * 10)
    r, timing = _run([], cache, tmp_path / "b")
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(entries) and all(
        ln.startswith(expect) and "deleted and compiled again" in ln for ln in lines), r.stderr
    # jaxmlp's entries fall back on JAX's cache (no XLA compile); JAX's on a compile
    assert timing["compiled"] == (len(entries) if which == "jax" else 0)
    assert all(np.array_equal(x, y) for x, y in zip(_params(tmp_path / "a"), _params(tmp_path / "b")))
    r, timing = _run([], cache, tmp_path / "c")  # the entries were written anew
    assert r.stderr == "" and timing["compiled"] == 0


def test_two_processes_share_one_cache(tmp_path):
    cache = tmp_path / "cache"
    env = cpu_env(JAXMLP_COMPILE_CACHE=str(cache))  # both on the CPU: bit-identical params
    procs = [subprocess.Popen([JAXMLP, *TINY, "--out", str(tmp_path / n)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and err == "", err
    a, b = _params(tmp_path / "a"), _params(tmp_path / "b")
    assert a and all(np.array_equal(x, y) for x, y in zip(a, b))
    _, timing = _run([], cache, tmp_path / "c")
    assert timing["compiled"] == 0


def test_no_compile_cache_flag_and_off(tmp_path):
    cache = tmp_path / "cache"
    _, timing = _run(["--no-compile-cache"], cache, tmp_path / "a")
    assert timing["cache_hits"] == 0 and not cache.exists()
    _, timing = _run([], "off", tmp_path / "b")
    assert timing["cache_hits"] == 0 and timing["compiled"] == timing["programs"] >= 2


def test_caches_of_other_versions_are_dropped_beyond_the_last_few(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    for i in range(5):
        old = folder / f"v-old{i}"
        old.mkdir()
        os.utime(old, (1000 + i, 1000 + i))
    monkeypatch.setattr(cc.jax.config, "update", lambda *a: None)  # leave JAX's settings alone
    cc.use_compile_cache(folder)
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == sorted([cc.version_folder(folder).name, "v-old4", "v-old3"])


def test_sweep_programs_load_without_tracing_on_a_second_run(tmp_path):
    """jaxmlp sweep (its model axis over one host device per core): the chunk, the
    initialisation and the final-metrics programs are kept under jaxmlp's keys with the devices
    they run on, and a second sweep with other learning rates loads all three."""
    cache = tmp_path / "cache"
    env = {**os.environ, "JAXMLP_COMPILE_CACHE": str(cache)}
    grid = ["sweep", "--dataset", "iris", "--width", "4,16", "--seeds", "2", "--epochs", "3",
            "--quiet"]

    def sweep(lrs, out):
        r = subprocess.run([JAXMLP, *grid, "--lr", lrs, "--out", str(tmp_path / out)],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return json.loads((tmp_path / out / "timing.json").read_text())
    first = sweep("0.1,0.3", "a")
    names = sorted(p.name.split("-")[0] for p in _aot(cache).iterdir())
    assert names == ["chunk", "sweep_init", "sweep_metrics"] and first["compiled"] >= 3
    again = sweep("0.05,0.2", "b")
    assert again["compiled"] == 0 and again["cache_hits"] == again["programs"] == 3
    assert sorted(p.name.split("-")[0] for p in _aot(cache).iterdir()) == names
