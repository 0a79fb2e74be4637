"""The MLP as pure functions: parameter initialisation and the forward pass.

Params are a plain pytree: a list of layers, each ``{"W": (fan_in, fan_out), "b": (fan_out,)}``.
For a batch ``x`` of shape ``(B, fan_in)`` a layer computes ``s = x @ W + b`` (the slides'
``s = W x`` transposed for row-major batches) and ``o = phi(s)`` elementwise.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxmlp import registry
from jaxmlp.errors import ConfigError

Params = list  # list[dict[str, jax.Array]]

identity = registry.identity  # the identity activation, o = s (public here since the first layout)

# name -> activation function, a view of the registry (``jaxmlp.registry.ACTIVATIONS``).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    name: a.forward for name, a in registry.ACTIVATIONS.items()}

# Initialisation variance per scheme, as a function of (fan_in, fan_out) (the registry's).
_INIT_VARIANCE = registry.INIT_VARIANCE
# The scheme each activation gets under init="auto" (the registry's ``init`` field).
_AUTO_INIT = {name: a.init for name, a in registry.ACTIVATIONS.items()}

INIT_SCHEMES = registry.init_names()


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Return the activation function called ``name`` (see ``jaxmlp.registry.ACTIVATIONS``)."""
    return registry.activation(name).forward


def resolve_init(init: str, activation: str) -> str:
    """The concrete init scheme ("lecun", "glorot", "he") that ``init`` means for ``activation``."""
    if init == "auto":
        return registry.activation(activation).init
    if init not in _INIT_VARIANCE:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
    return init


def standard_normals(key: jax.Array, sizes: Sequence[int], dtype=jnp.float32) -> list:
    """Per layer, a (fan_in, fan_out) array of i.i.d. N(0, 1) draws: row ``i`` of layer ``l`` is
    ``jax.random.normal(fold_in(k_l, i), (fan_out,))`` with ``k_l`` the ``l``-th key of
    ``jax.random.split(key, L)``.

    Nested across widths: under JAX's default (partitionable) threefry a 1-D draw of ``n``
    values is the first ``n`` of a longer draw, so for the same key and depth a narrower
    model's draws are the top-left blocks of a wider model's. A sweep initialises all its
    widths from one draw at the widest shape this way (``jaxmlp.sweep``), and width ablations
    compare sub-networks of one random network.
    """
    sizes = [int(s) for s in sizes]
    keys = jax.random.split(key, len(sizes) - 1)
    out = []
    for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:]):
        row = lambda i, k=k, fan_out=fan_out: jax.random.normal(jax.random.fold_in(k, i),
                                                                (fan_out,), dtype=dtype)
        out.append(jax.vmap(row)(jnp.arange(fan_in, dtype=jnp.uint32)))
    return out


def init_stds(sizes: Sequence[int], *, init: str = "auto", activation: str = "tanh") -> list[float]:
    """The weight standard deviation of each layer under ``init`` (see ``init_mlp``)."""
    scheme = resolve_init(init, activation)
    return [_INIT_VARIANCE[scheme](a, b) ** 0.5 for a, b in zip(sizes[:-1], sizes[1:])]


def init_mlp(key: jax.Array, sizes: Sequence[int], *, init: str = "auto",
             activation: str = "tanh", dtype=jnp.float32) -> Params:
    """Initialise an MLP with layer sizes ``sizes = (d_in, h_1, ..., h_k, d_out)``.

    Weights are ``std * standard_normals(key, sizes)`` with var = 1/fan_in (LeCun),
    2/(fan_in+fan_out) (Glorot) or 2/fan_in (He); ``init="auto"`` picks the activation's
    registry default (Glorot for tanh/sigmoid, He for ReLU/GELU/SiLU, LeCun for identity).
    Biases start at zero. The draws are nested across widths (see ``standard_normals``).

    Args:
        key: PRNG key.
        sizes: at least two positive ints.
        init: "auto", "lecun", "glorot" or "he".
        activation: hidden activation, used by ``init="auto"``.
        dtype: parameter dtype.

    Returns:
        A list of ``{"W": (sizes[l], sizes[l+1]), "b": (sizes[l+1],)}`` dicts.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ConfigError(f"layer sizes must be at least two positive integers, got {sizes}")
    stds = init_stds(sizes, init=init, activation=activation)
    return [{"W": std * Z, "b": jnp.zeros((Z.shape[1],), dtype=dtype)}
            for std, Z in zip(stds, standard_normals(key, sizes, dtype))]


def mup_multipliers(sizes: Sequence[int], base_width: int) -> tuple[list[float], list[float]]:
    """Per-layer (init std, learning-rate) multipliers of the maximal update parametrisation.

    Relative to a standard LeCun-style model of width ``base_width`` (Yang & Hu 2021, "Tensor
    Programs IV/V", the SGD column): the input layer's learning rate scales with its fan-out
    (x n / n0), hidden layers keep theirs, the output layer's learning rate scales as n0 / n and
    its init variance gains a further n0 / n (init std x sqrt(n0 / n)). At n = n0 the model and
    its updates equal the standard parametrisation. Biases follow their layer.

    Returns:
        ``(init_std_mult, lr_mult)``, one float per layer.
    """
    sizes = [int(s) for s in sizes]
    L = len(sizes) - 1
    init_mult, lr_mult = [1.0] * L, [1.0] * L
    if L == 1:
        return init_mult, lr_mult
    lr_mult[0] = sizes[1] / base_width
    fan_in_out = sizes[-2]
    lr_mult[-1] = base_width / fan_in_out
    init_mult[-1] = (base_width / fan_in_out) ** 0.5
    return init_mult, lr_mult


def scale_layers(params: Params, mult: Sequence[float]) -> Params:
    """Multiply each layer's weights by a per-layer factor (biases unchanged)."""
    return [{"W": layer["W"] * m, "b": layer["b"]} for layer, m in zip(params, mult)]


def weight_counts(sizes: Sequence[int]) -> list[int]:
    """``fan_in * fan_out`` of each layer of an MLP with layer sizes ``sizes``."""
    return [int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:])]


def training_flops_estimate(sizes: Sequence[int], n_train: int, epochs: int,
                            n_models: int = 1) -> float:
    """Matmul FLOPs of training ``n_models`` models of layer sizes ``sizes`` for ``epochs``
    epochs of ``n_train`` examples: 6 per weight per example (forward, input and weight
    gradients)."""
    return 6.0 * sum(weight_counts(sizes)) * n_train * epochs * n_models


def elementwise_counts(sizes: Sequence[int], n_train: int, n_eval: int, epochs: int,
                       steps: int) -> dict:
    """What a fit's elementwise (non-matmul) kernels work through, by kind: ``steps``
    (optimizer steps), ``outputs`` (every layer's outputs for each training example of each
    epoch, forward and backward, and each evaluation row of the per-epoch validation/test
    pass), ``weights`` (every weight once per step: the update) and ``inputs`` (each training
    example's features once per epoch: the batches gathered in data order)."""
    return {"steps": float(steps), "outputs": float(sum(sizes[1:]) * (n_train + n_eval) * epochs),
            "weights": float(sum(weight_counts(sizes)) * steps),
            "inputs": float(sizes[0] * n_train * epochs)}


def layer_sizes(params: Params) -> list[int]:
    """``(d_in, h_1, ..., d_out)`` read off the params' shapes."""
    return [params[0]["W"].shape[-2]] + [layer["W"].shape[-1] for layer in params]


def _row(v: jax.Array, like: jax.Array) -> jax.Array:
    """Broadcast a per-unit vector (k,) against ``like`` (..., k) explicitly (rank-strict)."""
    return v.reshape((1,) * (like.ndim - 1) + v.shape)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def matmul(x: jax.Array, W: jax.Array, hidden_input: bool = False) -> jax.Array:
    """``x @ W`` for a batch ``x`` (B, fan_in), differentiable in every mode like ``x @ W``;
    ``hidden_input``: ``x`` is a hidden layer's output, not the data (``materialises``).

    Its derivative rule only changes how the weight gradient ``x^T @ g`` of a small or thin
    weight matrix (``materialises``) is laid out on CPU: there the smaller of
    ``x`` (B, fan_in) and ``g`` (B, fan_out) is transposed and materialised (optimisation
    barriers keep XLA from folding the transposes back into the product), so XLA:CPU runs
    ``dW`` as a plain row-major product in the same library kernels as the forward pass
    instead of its generic transposed-operand dot. That generic dot cost a ~25 ms warm-up on
    the first digits 64-128-10 run in a process and, batched over a sweep's models, was the
    slowest op of a sweep step; for large square-ish matrices it is as fast or faster
    (BENCHMARKS.md, "Size thresholds"). Other platforms get the plain transposes.
    """
    return x @ W


MATERIALISE_MAX = 32768
MATERIALISE_MIN_DIM = 64
MATERIALISE_HIDDEN = True


def materialises(fan_in: int, fan_out: int, hidden_input: bool = False) -> bool:
    """Whether the weight gradient of a ``fan_in`` x ``fan_out`` layer is computed with an
    operand materialised on CPU (``matmul``) rather than by XLA's own transposed-operand
    product: for a thin layer (a side of at most ``MATERIALISE_MIN_DIM``: an output layer, a
    first layer on few features), a small one (at most ``MATERIALISE_MAX`` entries), or one
    fed by a hidden layer (``hidden_input``, while ``MATERIALISE_HIDDEN``): XLA's product is
    left to a wide first layer on many input features. Measured over widths 16-4096, batch
    32-1024, 64 and 784 inputs (``scripts/thresholds.py``, BENCHMARKS.md "Size thresholds"):
    XLA's product of a thin layer is up to several times slower; whole runs of deeper models
    were faster with their hidden layers materialised, a wide first layer on 784 inputs
    mostly with XLA's product."""
    return (min(fan_in, fan_out) <= MATERIALISE_MIN_DIM or fan_in * fan_out <= MATERIALISE_MAX
            or (hidden_input and MATERIALISE_HIDDEN))


def transposed(x: jax.Array) -> jax.Array:
    """``x`` with its last two axes swapped, materialised on CPU (see ``matmul``)."""
    def cpu(a):
        return jax.lax.optimization_barrier(jnp.swapaxes(a, -1, -2))
    return jax.lax.platform_dependent(x, cpu=cpu, default=lambda a: jnp.swapaxes(a, -1, -2))


def _materialised(a: jax.Array) -> jax.Array:
    """``a`` behind an optimisation barrier on CPU (its layout cannot be folded into the
    neighbouring products); unchanged elsewhere. Linear: its transpose is itself."""
    return jax.lax.platform_dependent(a, cpu=jax.lax.optimization_barrier, default=lambda v: v)


def weight_gradient(x: jax.Array, g: jax.Array, hidden_input: bool = False) -> jax.Array:
    """``x^T @ g`` (summed over the batch axis) laid out as ``matmul``'s derivative lays out
    the weight gradient: XLA's own product unless ``materialises``, otherwise a plain product
    with the smaller of ``x`` and ``g`` transposed and materialised. Used by the hand-derived
    backward (``jaxmlp.backprop``)."""
    fan_in, fan_out = x.shape[-1], g.shape[-1]
    if not materialises(fan_in, fan_out, hidden_input):
        return jnp.swapaxes(x, -1, -2) @ g
    if fan_out < fan_in:
        return jnp.swapaxes(_materialised(transposed(g) @ x), -1, -2)
    return transposed(x) @ g


def _matmul_jvp(hidden_input, primals, tangents):
    x, W = primals
    dx, dW = tangents
    out = x @ W
    t = None
    if not isinstance(dx, SymbolicZero):
        t = dx @ W
    if not isinstance(dW, SymbolicZero):
        fan_in, fan_out = W.shape[-2], W.shape[-1]
        if not materialises(fan_in, fan_out, hidden_input):
            u = x @ dW                     # XLA's own product (large, not thin, matrices)
        elif fan_out < fan_in:
            # written as (dW^T x^T)^T with barriers: its transpose w.r.t. dW is
            # (materialised g^T) @ x, transposed back (the barrier on dW^T keeps XLA from
            # folding that last transpose into the product by swapping its operands)
            dW_t = _materialised(jnp.swapaxes(dW, -1, -2))
            u = jnp.swapaxes(_materialised(dW_t @ jnp.swapaxes(x, -1, -2)), -1, -2)
        else:
            # transposing this product w.r.t. dW gives transposed(x) @ g: a plain product
            u = jnp.swapaxes(transposed(x), -1, -2) @ dW
        t = u if t is None else t + u
    return out, (jnp.zeros_like(out) if t is None else t)


matmul.defjvp(_matmul_jvp, symbolic_zeros=True)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def low_precision_matmul(x: jax.Array, W: jax.Array, dtype) -> jax.Array:
    """``x @ W`` with both operands in ``dtype`` (e.g. bfloat16), accumulated in ``W``'s dtype
    (float32), and so are both products of its derivative: ``g @ W^T`` and ``x^T @ g`` take the
    float32 cotangent ``g`` cast to ``dtype`` (autodiff of the plain mixed-precision product
    would run them against float32 ``g``, upcasting two thirds of a step's matmul FLOPs). The
    saved operands are the ``dtype`` ones (half the memory). No loss scaling: bfloat16 has
    float32's exponent range."""
    return jnp.matmul(x.astype(dtype), W.astype(dtype), preferred_element_type=W.dtype)


def _low_precision_fwd(x, W, dtype):
    xl, Wl = x.astype(dtype), W.astype(dtype)
    x_like = jnp.zeros((0,), x.dtype)  # carries x's dtype (residuals must be arrays)
    return jnp.matmul(xl, Wl, preferred_element_type=W.dtype), (xl, Wl, x_like)


def _low_precision_bwd(dtype, res, g):
    xl, Wl, x_like = res
    gl = g.astype(dtype)  # g has the output's dtype: W's
    dx = jnp.matmul(gl, jnp.swapaxes(Wl, -1, -2), preferred_element_type=g.dtype)
    dW = jnp.matmul(jnp.swapaxes(xl, -1, -2), gl, preferred_element_type=g.dtype)
    return dx.astype(x_like.dtype), dW


low_precision_matmul.defvjp(_low_precision_fwd, _low_precision_bwd)


def dense(layer: dict, x: jax.Array, compute_dtype=None, hidden_input: bool = False) -> jax.Array:
    """``x @ W + b``; with ``compute_dtype`` (e.g. bfloat16) the matmul and its derivative's
    products run in that dtype and accumulate in the parameter dtype
    (``low_precision_matmul``). ``hidden_input`` as ``matmul``."""
    W = layer["W"]
    if compute_dtype is None or jnp.dtype(compute_dtype) == W.dtype:
        s = matmul(x, W, hidden_input) if x.ndim == 2 else x @ W
        return s + _row(layer["b"], s)
    s = low_precision_matmul(x, W, jnp.dtype(compute_dtype))
    return s + _row(layer["b"], s)


def forward(params: Params, x: jax.Array, *, activation: str = "tanh",
            output_activation: str = "identity", masks: Sequence[jax.Array] | None = None,
            compute_dtype=None) -> jax.Array:
    """Run the MLP on a batch.

    Hidden layers compute ``o = phi(x @ W + b)``; the last layer applies
    ``output_activation`` (identity by default), so for classification the result is the
    pre-softmax scores (logits) and for regression the prediction.

    Args:
        params: list of ``{"W", "b"}`` layers.
        x: inputs, shape (B, d_in) (or (d_in,) for one example).
        activation: hidden activation name.
        output_activation: activation of the last layer.
        masks: optional per-hidden-layer unit masks of shape (h_l,), multiplied into each hidden
            output (used by sweeps to embed a narrow model exactly in a wider one).
        compute_dtype: optional matmul dtype (e.g. ``jnp.bfloat16``), accumulating in float32.

    Returns:
        Outputs of shape (B, d_out).
    """
    phi = get_activation(activation)
    out_phi = get_activation(output_activation)
    h = x
    last = len(params) - 1
    for i, layer in enumerate(params):
        s = dense(layer, h, compute_dtype, hidden_input=i > 0)
        if i == last:
            return out_phi(s)
        h = phi(s)
        if masks is not None:
            h = h * _row(masks[i], h)
    raise ConfigError("params must contain at least one layer")
