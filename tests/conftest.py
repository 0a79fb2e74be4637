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

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _fresh_programs():
    """Each test module starts and ends without compiled programs in memory: a session that
    kept all of them (thousands) would run out of memory maps (jaxmlp.training.memo)."""
    from jaxmlp import clear_caches
    clear_caches()
    yield
    clear_caches()


@pytest.fixture(scope="module")
def small():
    """400 rows of digits (split 70/10/20): quick, still a real task (the sweep tests)."""
    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_splits
    return load_splits(DataConfig(dataset="digits", n_samples=400))
