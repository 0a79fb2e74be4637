"""The public surface: everything in __all__ exists, and the documented entry points work."""
import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp

DOCUMENTED = {"init_mlp", "forward", "softmax", "log_softmax", "mse", "cross_entropy",
              "cross_entropy_bits", "entropy_bits", "fit", "sweep", "value_and_grad",
              "per_example_grads", "DataConfig", "ModelConfig", "TrainConfig", "load_splits",
              "JaxmlpError", "ConfigError", "DataError"}


def test_all_names_exist_and_cover_the_documented_api():
    assert DOCUMENTED <= set(jaxmlp.__all__)
    for name in jaxmlp.__all__:
        assert hasattr(jaxmlp, name), name
    assert len(set(jaxmlp.__all__)) == len(jaxmlp.__all__)


def test_params_are_a_plain_pytree_and_grads_match_it():
    p = jaxmlp.init_mlp(jax.random.PRNGKey(0), [3, 4, 2])
    assert isinstance(p, list) and all(set(l) == {"W", "b"} for l in p)
    x = jnp.ones((5, 3))
    y = jnp.array([0, 1, 0, 1, 1])
    _, g = jaxmlp.value_and_grad(p, x, y)
    assert jax.tree.structure(g) == jax.tree.structure(p)
    from jaxmlp.backprop import mlp_value_and_grad
    _, m = mlp_value_and_grad(p, x, y)
    assert jax.tree.structure(m) == jax.tree.structure(p)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(m)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_top_level_sweep_returns_the_table():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    res = jaxmlp.sweep((X, y), model=jaxmlp.ModelConfig(hidden=(4,)),
                       train=jaxmlp.TrainConfig(epochs=2, batch_size=8), grid={"lr": [0.1, 0.2]})
    assert isinstance(res, jaxmlp.SweepResult) and len(res.rows) == 2
    assert [r["lr"] for r in res.rows] == [0.1, 0.2]
    assert all(np.isfinite(r["train_loss"]) for r in res.rows)


def test_importing_jaxmlp_does_not_start_a_backend():
    """jax.distributed.initialize must run before any backend starts: importing the package
    (and its CLI) must not start one."""
    import subprocess
    import sys
    code = ("import jaxmlp, jaxmlp.cli, jaxmlp.runs.sweep_folder, jaxmlp.bench.inproc\n"
            "from jax._src import xla_bridge\n"
            "print(xla_bridge.backends_are_initialized())\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
