"""Test set-up: strict dtype promotion and rank checks, float32 by default."""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The commands keep compiled programs in ~/.cache/jaxmlp by default: the tests (and the CLI
# processes they start) use a private folder of this session instead, removed at the end.
if "JAXMLP_COMPILE_CACHE" not in os.environ:
    os.environ["JAXMLP_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="jaxmlp-test-cache-")
    atexit.register(shutil.rmtree, os.environ["JAXMLP_COMPILE_CACHE"], ignore_errors=True)

# float32 matmuls at full float32 precision on any backend (GPUs would use TF32, TPUs one
# bfloat16 pass, and the tolerances below assume float32); CPUs compute float32 anyway. Set in
# the environment, so the CLI processes the tests start inherit it.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


#: Memory maps above which the compiled programs kept in memory are dropped between test
#: modules: a session that kept all of them (thousands) would reach Linux's 65,530 maps and
#: XLA would crash mid-compile (jaxmlp.training.memo). Below it, later modules reuse them.
MAX_MAPS = 20_000


@pytest.fixture(autouse=True, scope="module")
def _bounded_programs():
    """After each test module: drop compiled programs once the process holds many memory maps
    (every module where /proc is missing)."""
    yield
    from helpers import memory_maps
    maps = memory_maps()
    if maps is None or maps > MAX_MAPS:
        from jaxmlp import clear_caches
        clear_caches()


@pytest.fixture(scope="module")
def small():
    """400 rows of digits (split 70/10/20): quick, still a real task (the sweep tests)."""
    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_splits
    return load_splits(DataConfig(dataset="digits", n_samples=400))
