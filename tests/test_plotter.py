"""Figures drawn by the worker process equal those drawn in-process; a worker that fails
costs nothing but time; `import jaxmlp` and `jaxmlp --help` do not load JAX or matplotlib."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from jaxmlp.runs import plots
from jaxmlp.runs import plotter

HISTORY = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, float("nan")],
           "val_accuracy": [0.5, 0.7, 0.8]}
LINES = {"x": [16, 32, 64], "series": {"acc": [0.9, 0.92, 0.95]}, "xlabel": "width",
         "ylabel": "acc", "logx": True, "errors": {"acc": [0.01, 0.02, 0.01]}}


def test_worker_draws_the_same_pngs_as_this_process(tmp_path):
    p = plotter.Plotter(worker=True)
    assert p.proc is not None
    p.submit(tmp_path / "a.png", "history_figure", history=HISTORY, title="t")
    p.submit(tmp_path / "b.png", "lines_figure", **LINES)
    assert all(sent for *_, sent in p.jobs)
    p.finish()
    assert p.proc is None
    assert (tmp_path / "a.png").read_bytes() == plots.history_figure(HISTORY, title="t")
    assert (tmp_path / "b.png").read_bytes() == plots.lines_figure(**LINES)


def test_a_dead_worker_falls_back_to_drawing_here(tmp_path, monkeypatch):
    dead = tmp_path / "dead.py"
    dead.write_text("import sys; sys.exit(3)\n")
    monkeypatch.setattr(plotter, "PLOTS_SCRIPT", dead)
    p = plotter.Plotter(worker=True)
    p.proc.wait(timeout=30)
    p.submit(tmp_path / "a.png", "history_figure", history=HISTORY)
    p.finish()
    assert (tmp_path / "a.png").read_bytes() == plots.history_figure(HISTORY)


def test_large_requests_are_drawn_here(tmp_path):
    p = plotter.Plotter(worker=True)
    big = {"epoch": list(range(5000)), "train_loss": list(np.linspace(1, 0.1, 5000))}
    p.submit(tmp_path / "big.png", "history_figure", history=big)
    assert p.jobs[0][3] is False  # over MAX_REQUEST_BYTES: not sent
    p.finish()
    assert (tmp_path / "big.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_protocol_reports_a_failed_figure_as_empty():
    import io
    import json
    requests = [json.dumps({"fn": "history_figure", "kwargs": {"history": HISTORY}}) + "\n",
                json.dumps({"fn": "no_such_figure", "kwargs": {}}) + "\n"]
    out = io.BytesIO()
    plots.serve(requests, out)
    data = out.getvalue()
    n, rest = data.split(b"\n", 1)
    assert rest[:int(n)] == plots.history_figure(HISTORY)
    assert rest[int(n):] == b"0\n"


def test_import_and_help_load_neither_jax_nor_matplotlib():
    code = ("import sys, jaxmlp, jaxmlp.cli; "
            "print(any(m == 'jax' or m.startswith('matplotlib') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    exe = str(Path(sys.executable).with_name("jaxmlp"))
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "train" in r.stdout


def test_package_names_resolve_lazily():
    import jaxmlp
    import jaxmlp.sweeps  # the package of the sweep engine does not hide the function
    from jaxmlp.sweeps import sweep
    assert jaxmlp.sweep is sweep and callable(sweep) and jaxmlp.sweeps.sweep is sweep
    assert jaxmlp.fit.__module__ == "jaxmlp.training" and jaxmlp.nn.__name__ == "jaxmlp.nn"
    assert set(jaxmlp.__all__) <= set(dir(jaxmlp))
    for name in jaxmlp.__all__:
        assert getattr(jaxmlp, name) is not None
