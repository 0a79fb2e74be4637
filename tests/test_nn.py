"""Init and forward pass: layout, init variances, activations, masks, gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.errors import ConfigError

#: The compiled form of the weight-gradient products (``jaxmlp.nn.materialises``) was tuned on
#: XLA:CPU of jaxlib 0.10; older XLA (the supported minimum is 0.8) lays the dots out otherwise.
_TUNED_XLA = pytest.mark.skipif(
    tuple(int(v) for v in jax.__version__.split(".")[:2]) < (0, 10),
    reason="checks the XLA:CPU dot layout of jaxlib >= 0.10 (numerics are tested elsewhere)")


def test_params_layout_and_forward_matches_numpy():
    params = jm.init_mlp(jax.random.PRNGKey(0), [3, 5, 4, 2], activation="tanh")
    assert [tuple(l["W"].shape) for l in params] == [(3, 5), (5, 4), (4, 2)]
    assert jm.layer_sizes(params) == [3, 5, 4, 2]
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    h = x
    P = [{k: np.asarray(v) for k, v in l.items()} for l in params]
    for i, l in enumerate(P):
        h = h @ l["W"] + l["b"]
        if i < len(P) - 1:
            h = np.tanh(h)
    np.testing.assert_allclose(jm.forward(params, jnp.asarray(x), activation="tanh"), h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act,ref", [("relu", lambda s: np.maximum(s, 0)),
                                     ("sigmoid", lambda s: 1 / (1 + np.exp(-s))),
                                     ("identity", lambda s: s)])
def test_activations(act, ref):
    params = [{"W": jnp.eye(3), "b": jnp.zeros(3)}, {"W": jnp.eye(3), "b": jnp.zeros(3)}]
    x = jnp.array([[-2.0, 0.5, 3.0]])
    np.testing.assert_allclose(jm.forward(params, x, activation=act), ref(np.asarray(x)), rtol=1e-6)


@pytest.mark.parametrize("init,act,var", [("lecun", "tanh", lambda fi, fo: 1 / fi),
                                          ("auto", "tanh", lambda fi, fo: 2 / (fi + fo)),
                                          ("auto", "relu", lambda fi, fo: 2 / fi)])
def test_init_variance(init, act, var):
    W = jm.init_mlp(jax.random.PRNGKey(1), [400, 300, 2], init=init, activation=act)[0]["W"]
    assert float(jnp.var(W)) == pytest.approx(var(400, 300), rel=0.05)


def test_init_is_deterministic_and_key_dependent():
    a = jm.init_mlp(jax.random.PRNGKey(3), [4, 8, 2])
    b = jm.init_mlp(jax.random.PRNGKey(3), [4, 8, 2])
    c = jm.init_mlp(jax.random.PRNGKey(4), [4, 8, 2])
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.array_equal(a[0]["W"], c[0]["W"])


def test_bad_sizes_and_names():
    with pytest.raises(ConfigError):
        jm.init_mlp(jax.random.PRNGKey(0), [3])
    with pytest.raises(ConfigError):
        jm.init_mlp(jax.random.PRNGKey(0), [3, 0, 2])
    with pytest.raises(ConfigError):
        jm.forward(jm.init_mlp(jax.random.PRNGKey(0), [2, 2]), jnp.ones((1, 2)), activation="elu")
    with pytest.raises(ConfigError):
        jm.init_mlp(jax.random.PRNGKey(0), [2, 2], activation="elu")


def test_linear_layers_collapse_to_one_linear_map():
    """Without a nonlinearity two layers equal one: W' = W1 W2, b' = b1 W2 + b2."""
    p = jm.init_mlp(jax.random.PRNGKey(0), [3, 6, 2])
    p[0]["b"] = jnp.arange(6.0)
    Wc = p[0]["W"] @ p[1]["W"]
    bc = p[0]["b"] @ p[1]["W"] + p[1]["b"]
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    np.testing.assert_allclose(jm.forward(p, x, activation="identity"), x @ Wc + bc[None, :], rtol=1e-5, atol=1e-5)


def test_masks_embed_a_narrow_model_exactly():
    narrow = jm.init_mlp(jax.random.PRNGKey(0), [3, 4, 2], activation="sigmoid")
    wide = [{"W": jnp.zeros((3, 7)).at[:, :4].set(narrow[0]["W"]), "b": jnp.zeros(7)},
            {"W": jnp.zeros((7, 2)).at[:4].set(narrow[1]["W"]), "b": narrow[1]["b"]}]
    mask = jnp.arange(7) < 4
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    np.testing.assert_allclose(jm.forward(wide, x, activation="sigmoid", masks=[mask.astype(jnp.float32)]),
                               jm.forward(narrow, x, activation="sigmoid"), rtol=1e-6)


def test_grad_matches_finite_differences_and_per_example():
    key = jax.random.PRNGKey(0)
    params = jm.init_mlp(key, [3, 4, 3])
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    loss, g = jm.value_and_grad(params, x, y, activation="tanh", loss="ce")
    eps = 1e-2
    for (i, name, idx) in [(0, "W", (1, 2)), (1, "b", (0,)), (1, "W", (3, 1))]:
        def at(d):
            q = jax.tree.map(lambda a: a, params)
            q[i] = dict(q[i])
            q[i][name] = q[i][name].at[idx].add(d)
            return float(jm.batch_loss(q, x, y, activation="tanh", loss="ce"))
        fd = (at(eps) - at(-eps)) / (2 * eps)
        assert float(g[i][name][idx]) == pytest.approx(fd, rel=2e-2, abs=1e-4)
    pe = jm.per_example_grads(params, x, y, activation="tanh", loss="ce")
    assert pe[0]["W"].shape == (6, 3, 4)
    np.testing.assert_allclose(pe[0]["W"].mean(0), g[0]["W"], rtol=1e-4, atol=1e-6)
    norms = jm.per_example_grad_norms(params, x, y, activation="tanh", loss="ce")
    direct = jnp.sqrt(sum(jnp.sum(l.reshape(6, -1) ** 2, axis=1) for l in jax.tree.leaves(pe)))
    np.testing.assert_allclose(norms, direct, rtol=1e-4)


def test_mup_multipliers():
    from jaxmlp.nn import mup_multipliers
    init, lr = mup_multipliers([64, 128, 128, 10], base_width=128)  # at the base width: SP
    assert init == [1.0, 1.0, 1.0] and lr == [1.0, 1.0, 1.0]
    init, lr = mup_multipliers([64, 512, 512, 10], base_width=128)  # 4x wider
    assert lr == [4.0, 1.0, 0.25]                  # input x n/n0, hidden 1, output x n0/n
    assert init[:2] == [1.0, 1.0] and init[2] == pytest.approx(0.5)  # output std x sqrt(n0/n)


def _tree_close(a, b, tol=1e-12):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["grad", "hessian", "jvp", "jacfwd", "vmap_grad", "jit_grad"])
def test_matmul_has_the_derivatives_of_x_at_w_in_every_mode(mode):
    from jaxmlp.nn import matmul
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(1), (5, 3), jnp.float64)
        W = jax.random.normal(jax.random.PRNGKey(2), (3, 4), jnp.float64)
        f = lambda x, W: jnp.sum(jnp.sin(matmul(x, W)) ** 2)
        g = lambda x, W: jnp.sum(jnp.sin(x @ W) ** 2)
        ops = {
            "grad": lambda h: jax.grad(h, (0, 1))(x, W),
            "hessian": lambda h: jax.hessian(h, (0, 1))(x, W),
            "jvp": lambda h: jax.jvp(h, (x, W), (2 * x, -W)),
            "jacfwd": lambda h: jax.jacfwd(h, 1)(x, W),
            "vmap_grad": lambda h: jax.vmap(jax.grad(h, 1), (0, None))(x[:, None], W),
            "jit_grad": lambda h: jax.jit(jax.grad(h, (0, 1)))(x, W),
        }
        a, b = ops[mode](f), ops[mode](g)
        assert np.any(np.abs(np.asarray(jax.tree.leaves(a)[0])) > 0)
        _tree_close(a, b)


@_TUNED_XLA
def test_weight_gradient_runs_as_a_plain_product_on_cpu():
    # The point of jaxmlp.nn.matmul: on CPU no dot of the compiled gradient contracts the
    # batch (leading) axis of its left operand (XLA:CPU's slow generic path).
    import re
    params = jm.init_mlp(jax.random.PRNGKey(0), [64, 128, 10])
    x, y = jnp.ones((128, 64)), jnp.zeros((128,), jnp.int32)
    hlo = jax.jit(jax.grad(jm.batch_loss)).lower(params, x, y).compile().as_text()
    plain = re.findall(r"\bdot\([^)]*\), lhs_contracting_dims=\{0\}", hlo)
    if jax.default_backend() == "cpu":
        assert plain == []
    assert len(re.findall(r"\bdot\(", hlo)) + hlo.count("__ynn_fusion") >= 3  # the dots exist


def test_materialise_rule_thin_or_small_layers():
    from jaxmlp.nn import MATERIALISE_MAX, MATERIALISE_MIN_DIM, materialises
    assert materialises(64, 128) and materialises(128, 10)           # small (W1)
    assert materialises(4096, 10) and materialises(10, 4096)         # thin, however large
    assert materialises(64, 4096) and materialises(784, MATERIALISE_MIN_DIM)
    assert materialises(2048, MATERIALISE_MIN_DIM)
    assert not materialises(784, 512) and not materialises(2048, MATERIALISE_MIN_DIM + 1)
    assert materialises(1, MATERIALISE_MAX) and not materialises(MATERIALISE_MIN_DIM + 1,
                                                                  MATERIALISE_MAX)
    # a layer fed by a hidden layer is materialised whatever its size; a first layer is not
    assert materialises(512, 512, hidden_input=True) and materialises(4096, 4096, True)
    assert not materialises(784, 512, hidden_input=False)


@_TUNED_XLA
def test_large_weight_gradients_keep_xla_own_product():
    # above MATERIALISE_MAX entries XLA:CPU's transposed-operand product is the faster one
    import re
    from jaxmlp.nn import MATERIALISE_MAX
    assert 64 * 128 <= MATERIALISE_MAX < 784 * 512
    for sizes in ([784, 512, 10], [784, 512, 512, 10]):  # W2's shape: its hidden layer too
        params = jm.init_mlp(jax.random.PRNGKey(0), sizes)
        x, y = jnp.ones((128, 784)), jnp.zeros((128,), jnp.int32)
        hlo = jax.jit(jax.grad(jm.batch_loss)).lower(params, x, y).compile().as_text()
        if jax.default_backend() == "cpu":  # only the first layer's (784x512) is XLA's product
            assert len(re.findall(r"\bdot\([^)]*\), lhs_contracting_dims=\{0\}", hlo)) == 1


def test_standard_normals_nest_across_widths():
    from jaxmlp.nn import standard_normals
    key = jax.random.PRNGKey(7)
    wide = standard_normals(key, [64, 128, 128, 10])
    for narrow_sizes in ([64, 16, 16, 10], [64, 128, 8, 10], [3, 1, 1, 2]):
        for z, w in zip(standard_normals(key, narrow_sizes), wide):
            assert z.shape[0] <= w.shape[0]
            np.testing.assert_array_equal(np.asarray(z), np.asarray(w)[:z.shape[0], :z.shape[1]])
    # independent layers and keys, standard normal statistics
    big = standard_normals(key, [400, 300, 10])[0]
    assert abs(float(big.mean())) < 0.01 and abs(float(big.std()) - 1.0) < 0.01
    other = standard_normals(jax.random.PRNGKey(8), [400, 300, 10])[0]
    assert abs(float(jnp.corrcoef(big.ravel(), other.ravel())[0, 1])) < 0.01
    # init_mlp is std * these draws
    p = jm.init_mlp(key, [64, 128, 128, 10], activation="relu")
    np.testing.assert_array_equal(np.asarray(p[1]["W"]), np.float32((2 / 128) ** 0.5) * np.asarray(wide[1]))


@pytest.mark.parametrize("fan_in,fan_out", [(64, 128), (128, 10), (784, 512), (5, 5)])
def test_weight_gradient_is_x_transpose_g(fan_in, fan_out):
    from jaxmlp.nn import weight_gradient
    x = jax.random.normal(jax.random.PRNGKey(0), (32, fan_in))
    g = jax.random.normal(jax.random.PRNGKey(1), (32, fan_out))
    ref = np.asarray(x, np.float64).T @ np.asarray(g, np.float64)
    for fn in (weight_gradient, jax.jit(weight_gradient)):
        np.testing.assert_allclose(np.asarray(fn(x, g)), ref, rtol=1e-4, atol=1e-4)
    # batched (a sweep's model axis)
    xb, gb = jnp.stack([x, 2 * x]), jnp.stack([g, -g])
    got = jax.jit(jax.vmap(weight_gradient))(xb, gb)
    np.testing.assert_allclose(np.asarray(got[1]), -2 * ref, rtol=1e-4, atol=1e-4)


def _dot_operand_dtypes(fn, *args):
    """The operand dtypes of every dot_general in ``fn``'s jaxpr (nested jaxprs included)."""
    found = []

    def walk(jaxpr):
        for e in jaxpr.eqns:
            if e.primitive.name == "dot_general":
                found.append(tuple(str(v.aval.dtype) for v in e.invars))
            for p in e.params.values():
                inner = getattr(p, "jaxpr", None)
                if inner is not None:
                    walk(getattr(inner, "jaxpr", inner))
    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_bfloat16_backward_products_stay_in_bfloat16():
    """``low_precision_matmul``: the forward product and both products of its derivative take
    bfloat16 operands (autodiff of the mixed-precision product runs two of the three against
    float32 cotangents); the gradients equal that autodiff's to bfloat16 round-off, in the
    primals' dtypes, also under vmap."""
    from jaxmlp.nn import low_precision_matmul
    bf16 = jnp.dtype(jnp.bfloat16)
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 16))
    W = jax.random.normal(jax.random.PRNGKey(1), (16, 8))
    mine = lambda x, W: jnp.sum(jnp.tanh(low_precision_matmul(x, W, bf16)))
    plain = lambda x, W: jnp.sum(jnp.tanh(jnp.matmul(x.astype(bf16), W.astype(bf16),
                                                     preferred_element_type=jnp.float32)))
    grad = lambda f: jax.grad(f, argnums=(0, 1))
    assert _dot_operand_dtypes(grad(mine), x, W) == [("bfloat16", "bfloat16")] * 3
    assert ("float32", "bfloat16") in _dot_operand_dtypes(grad(plain), x, W)
    for a, b, primal in zip(grad(mine)(x, W), grad(plain)(x, W), (x, W)):
        assert a.dtype == primal.dtype
        np.testing.assert_allclose(a, b, atol=1e-2 * float(jnp.max(jnp.abs(b))))
    Ws = jnp.stack([W, 2 * W])
    batched = jax.vmap(grad(mine), in_axes=(None, 0))(x, Ws)[1]
    np.testing.assert_allclose(batched[1], grad(mine)(x, 2 * W)[1], rtol=1e-6)
