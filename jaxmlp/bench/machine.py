"""The machine a benchmark ran on (CPU, versions, thread settings) and whether PyTorch is
there to compare with; both the in-process and the whole-command benchmark record these."""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys


#: Environment variables that set thread counts (recorded with every result).
THREAD_ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")


def thread_env() -> dict:
    """The thread-setting environment variables that are set, ``{name: value}``."""
    return {k: os.environ[k] for k in THREAD_ENV_KEYS if k in os.environ}


def torch_available() -> tuple[bool, str]:
    """``(True, "torch VERSION")`` if PyTorch imports in this Python (checked in a child, so
    this process does not pay for the import), else ``(False, why)``."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed in this Python"
    p = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return False, f"torch is not importable ({p.stderr.strip().splitlines()[-1:]})"
    return True, f"torch {p.stdout.strip()}"


_JAX_DEVICES = ("import json, jax; print(json.dumps({'backend': jax.default_backend(), "
                "'devices': [d.device_kind for d in jax.devices()]}))")


def jax_devices() -> dict:
    """The backend and devices jaxmlp runs on here (``{"backend", "devices"}``; asked in a
    child process, so this one neither imports JAX nor claims an accelerator's memory that
    the timed children need). The peers (scikit-learn, PyTorch CPU) run on the CPU."""
    p = subprocess.run([sys.executable, "-c", _JAX_DEVICES], capture_output=True, text=True)
    if p.returncode != 0:
        return {"backend": None, "devices": [], "error": p.stderr.strip().splitlines()[-1:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    """Platform, Python, CPU (lscpu's model, counts and vector flags), package versions,
    thread settings, and the JAX backend and devices (``jax_devices``)."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                             "Flags"):
                v = v.strip()
                if k.strip() == "Flags":
                    v = " ".join(f for f in v.split() if f.startswith(("avx", "fma", "amx")))
                info[k.strip()] = v
    except OSError:
        pass
    vers = {}
    for mod in ("jax", "jaxlib", "ml_dtypes", "optax", "numpy", "scikit-learn", "torch",
                "matplotlib"):
        try:
            from importlib.metadata import version
            vers[mod] = version(mod)
        except Exception:
            vers[mod] = None
    info["versions"] = vers
    info["thread_env"] = thread_env()
    info["jax"] = jax_devices()
    return info
