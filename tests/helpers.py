"""Helpers shared by the test modules (importable: pytest puts tests/ on sys.path)."""
import os

import jax
import numpy as np
import pytest

#: Forced host devices: 8 XLA CPU devices sharing this machine's cores.
FORCED_8 = "--xla_force_host_platform_device_count=8"


def cpu_env(without_xla_flags: bool = False, **extra) -> dict:
    """The environment of a child process that tests CPU mechanics (forced host devices,
    gloo collectives between processes, bit-identity across processes): JAX pinned to the CPU,
    so on a GPU/TPU machine the children neither claim the accelerators (two processes would
    both take every local GPU) nor run the CPU-specific paths on another backend."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if without_xla_flags:
        env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def require_cpu_backend() -> None:
    """Skip a test of a CPU-only guarantee (bit-identical results across processes: on a GPU
    each process may autotune its matrix products differently) on another backend."""
    if jax.default_backend() != "cpu":
        pytest.skip(f"CPU only (bit-identity across processes); here {jax.default_backend()}")


def require_one_cpu_device() -> None:
    """Skip a test of one-CPU-device mechanics (a sweep's model axis split into threads,
    ``jaxmlp.sweeps.execute.streams_for``) where the default backend is not one CPU device
    (an accelerator, or forced host devices)."""
    if jax.default_backend() != "cpu" or jax.device_count() != 1:
        pytest.skip(f"one CPU device only (here: {jax.device_count()} {jax.default_backend()} "
                    "device(s))")


def max_abs_diff(a, b) -> float:
    """The largest absolute difference between two pytrees of arrays, leaf by leaf."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_main(argv, capsys):
    """``jaxmlp.cli.main(argv)`` in-process: (exit code, stdout, stderr)."""
    from jaxmlp.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_manual_matches_autodiff_f32(params, x, y, **kw):
    """The hand-derived backward (``jaxmlp.backprop.mlp_value_and_grad``) equals ``jax.grad``
    (``jaxmlp.loss_and_grad``) in float32: the value to 1e-6, every gradient leaf float32 and
    within rtol 1e-4 (atol 2e-6)."""
    import jaxmlp as jm
    from jaxmlp.backprop import mlp_value_and_grad
    v, g = jax.jit(lambda p: mlp_value_and_grad(p, x, y, **kw))(params)
    v_ref, g_ref = jax.jit(lambda p: jm.loss_and_grad(p, x, y, **kw))(params)
    np.testing.assert_allclose(float(v), float(v_ref), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def memory_maps() -> int | None:
    """Memory maps this process holds (lines of /proc/self/maps); None where /proc is missing."""
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def fit_like_sweep(splits, **kw):
    """``jaxmlp.fit`` at the full compile options (``fast_compile=False``): the program a sweep's
    model is compared with. A sweep never compiles at -O0; a short default fit compiles quick
    (-O0), whose float32 round-off differs from the sweep's by more than these tests' bounds."""
    import jaxmlp
    return jaxmlp.fit(splits, fast_compile=False, **kw)
