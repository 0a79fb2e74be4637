"""Gates: the lectures' "plug-and-play" units, each with its local derivatives.

Each gate's ``forward`` computes its output and stores what the backward needs;
``backward(g)`` takes ``g = dL/d(output)`` and returns ``dL/d(input)`` for each input (a tuple
for multi-input gates), by the chain rule ``dL/dinput = dL/doutput * doutput/dinput``. The
local derivatives are written out in each gate's docstring. The activations' and losses'
derivatives are those of ``jaxmlp.registry`` (one definition, shared with the layer-wise MLP
backward in ``jaxmlp.backprop.mlp``); the helpers here undo broadcasting and differentiate the
batch reduction.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from jaxmlp import registry
from jaxmlp.losses import _reduce, softmax
from jaxmlp.registry import softmax_xent_forward, softmax_xent_grad

# do/ds from the output o (public names of the first layout; defined in the registry)
tanh_grad_from_output = registry.tanh_grad_from_output
relu_grad_from_output = registry.relu_grad_from_output
sigmoid_grad_from_output = registry.sigmoid_grad_from_output

# name -> phi'(s) as a function of what the activation's ``grad_from`` names: the output o
# (tanh, relu, sigmoid), the pre-activation s (gelu, silu), ``None`` for identity (phi' = 1).
ACTIVATION_GRADS: dict[str, Callable | None] = {
    name: a.derivative for name, a in registry.ACTIVATIONS.items()}

# name -> (g, kept) -> g * phi'(s): the backward of an activation gate, shared by the gates
# and the MLP backward (``None`` for identity: pass g through, no multiply).
ACTIVATION_BACKWARDS: dict[str, Callable | None] = {
    name: a.backward for name, a in registry.ACTIVATIONS.items()}


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (undo numpy broadcasting in a backward pass)."""
    gshape = jnp.shape(g)
    if tuple(gshape) == tuple(shape):
        return g
    g = jnp.sum(g, axis=tuple(range(len(gshape) - len(shape)))) if len(gshape) > len(shape) else g
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, jnp.shape(g))) if n == 1 and m != 1)
    return jnp.sum(g, axis=axes, keepdims=True) if axes else g


def _align(a, ndim: int):
    """Prepend unit axes to ``a`` up to ``ndim`` (explicit broadcasting, so the gates also run
    under ``jax_numpy_rank_promotion="raise"``). Scalars are left alone."""
    n = jnp.ndim(a)
    if n == 0 or n >= ndim:
        return a
    return jnp.reshape(a, (1,) * (ndim - n) + tuple(jnp.shape(a)))


def _aligned(x, y):
    n = max(jnp.ndim(x), jnp.ndim(y))
    return _align(x, n), _align(y, n)


def _batch_size(a) -> int:
    """Number of examples: leading axis of a (B, k) array, 1 for a single (k,) example."""
    return a.shape[0] if a.ndim >= 2 else 1


def _example_scale(out, weights):
    """dLoss/dl_i of the batch reduction ``losses._reduce`` for per-example losses l_i of the
    outputs ``out`` (..., k).

    Mean: 1/B (a Python float, so no extra array). Weighted mean
    sum_i w_i l_i / max(sum_i w_i, 1): w_i / max(sum w, 1), shape (B, 1) to broadcast over
    the output axis.
    """
    if weights is None:
        return 1.0 / max(math.prod(out.shape[:-1]), 1)
    w = weights.astype(out.dtype)
    return (w / jnp.maximum(jnp.sum(w), 1.0))[..., None]


def _targets_as_probs(t, num_classes: int, dtype):
    """Integer labels -> one-hot rows; soft / one-hot targets pass through."""
    if jnp.issubdtype(t.dtype, jnp.integer):
        return jax.nn.one_hot(t, num_classes, dtype=dtype)
    return t


# ---------------------------------------------------------------------------------------------
# Gates
# ---------------------------------------------------------------------------------------------

class Gate:
    """Base class: ``forward(*inputs)`` stores its cache; ``backward(g)`` returns input grads."""

    label = "gate"

    def forward(self, *inputs, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PlusGate(Gate):
    """q = x + y: dq/dx = 1, dq/dy = 1, so backward(g) = (g, g).

    The add gate *distributes* the incoming gradient unchanged to both inputs (summed back
    over broadcast axes if the shapes differ).
    """

    label = "+"

    def forward(self, x, y):
        self.x_shape, self.y_shape = jnp.shape(x), jnp.shape(y)
        x, y = _aligned(x, y)
        return x + y

    def backward(self, grad_out):
        return _unbroadcast(grad_out, self.x_shape), _unbroadcast(grad_out, self.y_shape)


class StarGate(Gate):
    """f = q * z: df/dq = z, df/dz = q, so backward(g) = (g * z, g * q).

    The multiply gate *swaps* its inputs: each input's gradient is the other input times g.
    """

    label = "*"

    def forward(self, q, z):
        self.q_shape, self.z_shape = jnp.shape(q), jnp.shape(z)
        self.q, self.z = _aligned(q, z)
        return self.q * self.z

    def backward(self, grad_out):
        return (_unbroadcast(grad_out * self.z, self.q_shape),
                _unbroadcast(grad_out * self.q, self.z_shape))


class MatMulGate(Gate):
    """s = x @ W with x (B, n) or (n,), W (n, m).

    ds_bj/dx_bi = W_ij and ds_bj/dW_ij = x_bi, so dL/dx = g @ W^T and dL/dW = x^T @ g
    (for one example (n,): dL/dW = outer(x, g)).
    """

    label = "@"

    def forward(self, x, W):
        self.x, self.W = x, W
        return x @ W

    def backward(self, grad_out):
        dx = grad_out @ self.W.T
        if jnp.ndim(self.x) == 1:
            dW = jnp.outer(self.x, grad_out)
        else:
            dW = self.x.T @ grad_out
        return dx, dW


class BiasAddGate(Gate):
    """s = a + b with a (B, m), b (m,) broadcast over the batch.

    ds/da = 1 and ds_bj/db_j = 1 for every example b, so dL/da = g and
    dL/db = sum over the batch of g (the bias is the weight of a constant input x0 = 1).
    """

    label = "+b"

    def forward(self, a, b):
        self.b_ndim = jnp.ndim(b)
        return a + _align(b, jnp.ndim(a))

    def backward(self, grad_out):
        batch_axes = tuple(range(jnp.ndim(grad_out) - self.b_ndim))
        return grad_out, jnp.sum(grad_out, axis=batch_axes) if batch_axes else grad_out


class _ActivationGate(Gate):
    """o = phi(s) elementwise; backward(g) = g * phi'(s), phi' formed from the cached output o
    or pre-activation s (whichever the registry entry's ``grad_from`` names)."""

    name = ""

    def forward(self, s):
        entry = registry.ACTIVATIONS[self.name]
        s = jnp.asarray(s)
        o = entry.forward(s)
        self.kept = s if entry.grad_from == "preact" else o
        return o

    def backward(self, grad_out):
        backward = registry.ACTIVATIONS[self.name].backward
        return grad_out if backward is None else backward(grad_out, self.kept)


class TanhGate(_ActivationGate):
    """o = tanh(s): do/ds = 1 - tanh(s)^2 = 1 - o^2."""

    name = label = "tanh"


class ReLUGate(_ActivationGate):
    """o = max(0, s): do/ds = 1 for s > 0, 0 for s <= 0 (the gate routes g to positive units)."""

    name = label = "relu"


class SigmoidGate(_ActivationGate):
    """o = sigma(s) = 1 / (1 + e^-s): sigma' = sigma(1 - sigma), i.e. do/ds = o (1 - o)."""

    name = label = "sigmoid"


class IdentityGate(Gate):
    """o = s: do/ds = 1, so backward(g) = g (the regression output layer)."""

    label = "id"

    def forward(self, s):
        return s

    def backward(self, grad_out):
        return grad_out


def _activation_gate(name: str) -> type:
    """The gate class of registry activation ``name`` (written out above, or made here)."""
    named = {"tanh": TanhGate, "relu": ReLUGate, "sigmoid": SigmoidGate,
             "identity": IdentityGate}
    if name in named:
        return named[name]
    doc = (f"o = {name}(s): backward(g) = g * phi'(s), phi' from the cached "
           f"{registry.ACTIVATIONS[name].grad_from} (``jaxmlp.registry``).")
    return type(f"{name.capitalize()}Gate", (_ActivationGate,),
                {"name": name, "label": name, "__doc__": doc, "__module__": __name__})


GATES_BY_ACTIVATION: dict[str, type] = {name: _activation_gate(name)
                                        for name in registry.ACTIVATIONS}


class SoftmaxGate(Gate):
    """q = softmax(z / T), q_i = exp(z_i / T) / sum_j exp(z_j / T), along the last axis.

    Jacobian dq_i/dz_j = q_i (1[i = j] - q_j) / T, so the vector-Jacobian product is
    dL/dz = q * (g - sum_i g_i q_i) / T, without forming the K x K matrix.
    """

    label = "softmax"

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def forward(self, z):
        self.q = softmax(z, self.temperature)
        return self.q

    def backward(self, grad_out):
        q = self.q
        return q * (grad_out - jnp.sum(grad_out * q, axis=-1, keepdims=True)) / self.temperature

    def __repr__(self) -> str:
        return f"SoftmaxGate(temperature={self.temperature!r})"


class LossGate(Gate):
    """A registry loss (``loss``: "mse", "huber", "ce", ...) of outputs o and targets t: l_i
    per example, then the batch mean.

    dL/do = dl_i/do / B from the registry entry's ``value_and_grad`` (mse: 2 (o - t) / (k B);
    huber: clip(o - t, -1, 1) / (k B); ce: (q - t) / (T B)). A residual loss is a function
    of o - t, so dL/dt = -dL/do for float targets; integer labels (a residual loss compares o
    with their one-hot) and ce's targets get no target gradient (``None``).
    With example ``weights`` the batch mean becomes sum_i w_i l_i / max(sum w, 1) and the 1/B
    factor becomes w_i / max(sum w, 1). A single example (k,) gives its loss l (no mean).
    """

    def __init__(self, loss: str = "mse", temperature=1.0):
        self.entry = registry.loss(loss)
        self.label, self.temperature = loss, temperature

    def forward(self, o, t, weights=None):
        o, t = jnp.asarray(o), jnp.asarray(t)
        self.int_labels = registry.is_labels(t)
        batched = o.ndim >= 2
        scale = _example_scale(o, weights) if batched else 1.0
        per, self.do = self.entry.value_and_grad(o, t, self.temperature, scale)
        return _reduce(per, weights) if batched else per

    def backward(self, grad_out):
        do = self.do * grad_out
        return do, (-do if self.entry.residual and not self.int_labels else None)

    def __repr__(self) -> str:
        return f"LossGate({self.entry.name!r}, temperature={self.temperature!r})"


class SqErrGate(LossGate):
    """The seed's MSE: E = (1/k) sum_j (o_j - t_j)^2 per example, then the batch mean.

    dE/do = 2 (o - t) / (k B) (the slides' o - t up to the mean's constant factor) and
    dE/dt = -dE/do. With example ``weights`` the batch mean becomes
    sum_i w_i E_i / max(sum w, 1) and the 1/B factor becomes w_i / max(sum w, 1).
    """

    def __init__(self):
        super().__init__("mse")
        self.label = "sqerr"

    def __repr__(self) -> str:
        return "SqErrGate()"


class CrEntGate(Gate):
    """Cross-entropy of probabilities: l = -sum_j t_j log q_j per example, batch mean.

    dl/dq_j = -t_j / q_j (divided by B for the mean); dl/dt_j = -log q_j / B.
    ``t`` may be integer labels (one-hot; no gradient for it) or soft targets.
    Composed after ``SoftmaxGate`` this is the lectures' softmax -> CrEnt(t) graph; prefer
    ``SoftmaxCrossEntropyGate`` for numerics (no division by tiny q).
    """

    label = "crent"

    def forward(self, q, t):
        q = jnp.asarray(q)
        self.int_labels = jnp.issubdtype(jnp.asarray(t).dtype, jnp.integer)
        self.q, self.t = q, _targets_as_probs(jnp.asarray(t), q.shape[-1], q.dtype)
        self.logq = jnp.log(q)
        per = -jnp.sum(self.t * self.logq, axis=-1)
        self.B = _batch_size(q)
        return jnp.mean(per)

    def backward(self, grad_out):
        scale = grad_out / self.B
        dq = -self.t / self.q * scale
        return dq, (None if self.int_labels else -self.logq * scale)


class SoftmaxCrossEntropyGate(Gate):
    """Fused softmax + cross-entropy from logits: l = -sum_j t_j log softmax(z / T)_j.

    With q = softmax(z / T) and targets summing to 1: dl/dz = (q - t) / T; over a batch mean
    dL/dz = (q - t) / (T B) (unnormalised soft targets: (q sum_j t_j - t) / T). Labels are
    integer indices (B,) or soft / one-hot targets (B, K); optional example ``weights`` (B,)
    give sum_i w_i l_i / max(sum w, 1). Also dl/dt = -log q (soft targets only; ``None`` for
    integer labels).
    """

    label = "softmax-xent"

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def forward(self, z, t, weights=None):
        z, t = jnp.asarray(z), jnp.asarray(t)
        per, self.q, self.logq = softmax_xent_forward(z, t, self.temperature)
        self.t = t
        self.scale = _example_scale(z, weights) if z.ndim >= 2 else 1.0
        return _reduce(per, weights) if z.ndim >= 2 else per

    def backward(self, grad_out):
        dz = softmax_xent_grad(self.q, self.t, self.temperature, self.scale) * grad_out
        if jnp.issubdtype(self.t.dtype, jnp.integer):
            return dz, None
        return dz, -self.logq * (self.scale * grad_out)

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropyGate(temperature={self.temperature!r})"


