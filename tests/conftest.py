"""Test set-up: strict dtype promotion and rank checks, float32 by default."""
import os
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The commands keep compiled programs in ~/.cache/jaxmlp by default: the tests (and the CLI
# processes they start) use a private folder of this session instead.
os.environ.setdefault("JAXMLP_COMPILE_CACHE", tempfile.mkdtemp(prefix="jaxmlp-test-cache-"))

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
