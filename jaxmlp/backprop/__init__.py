"""Hand-derived backpropagation: gates, a small computation-graph engine, and a vectorised
layer-wise MLP backward that returns the same pytree as ``jax.grad``.

Three layers, each built on the one before:

1. **Gates** ("plug-and-play" units from the lectures). Each gate's ``forward`` computes its
   output and stores what the backward needs; ``backward(g)`` takes ``g = dL/d(output)`` and
   returns ``dL/d(input)`` for each input (a tuple for multi-input gates), by the chain rule
   ``dL/dinput = dL/doutput * doutput/dinput``. The local derivatives are written out in each
   gate's docstring and implemented by small module-level functions that the MLP backward
   reuses, so each formula lives in one place.
2. **Graph**: composes gates into a computation graph, runs forward in insertion (topological)
   order, then backward from dL/dL = 1 in reverse order, *accumulating* gradients where a value
   feeds several gates; ``sgd_step`` moves parameters against their gradient.
   ``seed_example()`` builds the lectures' f(x, y, z) = (x + y) z.
3. **MLP backward**: ``mlp_value_and_grad`` caches the forward pass and applies the delta rule
   layer by layer; pure and jit/vmap/scan friendly. Drop-in for
   ``jax.value_and_grad(jaxmlp.objective.batch_loss)``.

Notation: for a layer ``s = a @ W + b`` (the slides' s = W x, transposed for row-major
batches) and ``o = phi(s)``; ``delta = dLoss/ds``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jaxmlp.errors import ConfigError
from jaxmlp.losses import _reduce, log_softmax, softmax
from jaxmlp.nn import ACTIVATIONS, weight_gradient

__all__ = [
    "PlusGate", "StarGate", "MatMulGate", "BiasAddGate", "TanhGate", "ReLUGate",
    "SigmoidGate", "IdentityGate", "SoftmaxGate", "SqErrGate", "CrEntGate",
    "SoftmaxCrossEntropyGate", "GATES_BY_ACTIVATION", "ACTIVATION_GRADS",
    "ACTIVATION_BACKWARDS",
    "tanh_grad_from_output", "relu_grad_from_output", "sigmoid_grad_from_output",
    "Graph", "Value", "seed_example", "mlp_graph",
    "mlp_value_and_grad", "mlp_grad",
]


# ---------------------------------------------------------------------------------------------
# Shared local-derivative formulas (used by the gates and by the MLP backward)
# ---------------------------------------------------------------------------------------------

def tanh_grad_from_output(o):
    """o = tanh(s): do/ds = 1 - o^2 (from the output, no second tanh)."""
    return 1.0 - o * o


def relu_grad_from_output(o):
    """o = max(0, s): do/ds = 1 if s > 0 else 0 (0 at the kink, as ``jax.nn.relu``)."""
    return (o > 0).astype(o.dtype)


def sigmoid_grad_from_output(o):
    """o = sigma(s): sigma'(s) = sigma(s) (1 - sigma(s)) = o (1 - o)."""
    return o * (1.0 - o)


def _tanh_backward(g, o):
    return g * tanh_grad_from_output(o)


def _relu_backward(g, o):
    # Route g to the positive units: a select, cheaper than multiplying by a 0/1 mask.
    return jnp.where(o > 0, g, 0.0)


def _sigmoid_backward(g, o):
    return g * sigmoid_grad_from_output(o)


# name -> do/ds as a function of the output o (``None`` for identity: do/ds = 1).
ACTIVATION_GRADS: dict[str, Callable | None] = {
    "tanh": tanh_grad_from_output,
    "relu": relu_grad_from_output,
    "sigmoid": sigmoid_grad_from_output,
    "identity": None,
}

# name -> (g, o) -> g * do/ds: the backward of an activation gate, shared by the gates and
# the MLP backward (``None`` for identity: pass g through, no multiply).
ACTIVATION_BACKWARDS: dict[str, Callable | None] = {
    "tanh": _tanh_backward,
    "relu": _relu_backward,
    "sigmoid": _sigmoid_backward,
    "identity": None,
}


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


def _example_scale(per_example, weights):
    """dLoss/dl_i of the batch reduction ``losses._reduce``.

    Mean: 1/B (a Python float, so no extra array). Weighted mean
    sum_i w_i l_i / max(sum_i w_i, 1): w_i / max(sum w, 1), shape (B, 1) to broadcast over
    the output axis.
    """
    if weights is None:
        return 1.0 / max(per_example.size, 1)
    w = weights.astype(per_example.dtype)
    return (w / jnp.maximum(jnp.sum(w), 1.0))[..., None]


def _targets_as_probs(t, num_classes: int, dtype):
    """Integer labels -> one-hot rows; soft / one-hot targets pass through."""
    if jnp.issubdtype(t.dtype, jnp.integer):
        return jax.nn.one_hot(t, num_classes, dtype=dtype)
    return t


def _sq_err_per_example(o, t):
    """E_i = (1/k) sum_j (o_ij - t_ij)^2, (B, k) -> (B,)."""
    return jnp.mean(jnp.square(o - t), axis=-1)


def _sq_err_grad(o, t, scale):
    """dE/do = 2 (o - t) / k, times the batch reduction's dLoss/dE_i."""
    return (o - t) * (scale * (2.0 / o.shape[-1]))


def _softmax_xent_forward(z, t, temperature):
    """Per-example l = -sum_j t_j log q_j, q = softmax(z / T), plus q (cached for backward)."""
    logq = log_softmax(z, temperature)
    if jnp.issubdtype(t.dtype, jnp.integer):
        per = -jnp.take_along_axis(logq, t[..., None].astype(jnp.int32), axis=-1)[..., 0]
    else:
        per = -jnp.sum(t * logq, axis=-1)
    return per, jnp.exp(logq), logq


def _softmax_xent_grad(q, t, temperature, scale):
    """dl/dz = (q sum_j t_j - t) / T (= (q - t) / T when t sums to 1), times dLoss/dl_i.

    Integer labels use the one-hot form (rows sum to 1); soft targets keep the sum so that
    unnormalised targets get the exact gradient too.
    """
    if jnp.issubdtype(t.dtype, jnp.integer):
        d = q - jax.nn.one_hot(t, q.shape[-1], dtype=q.dtype)
    else:
        d = q * jnp.sum(t, axis=-1, keepdims=True) - t
    return d * (scale / temperature)


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
    """o = phi(s) elementwise; backward(g) = g * phi'(s), phi' formed from the cached o."""

    name = ""

    def forward(self, s):
        self.o = ACTIVATIONS[self.name](jnp.asarray(s))
        return self.o

    def backward(self, grad_out):
        return ACTIVATION_BACKWARDS[self.name](grad_out, self.o)


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


GATES_BY_ACTIVATION: dict[str, type] = {
    "tanh": TanhGate, "relu": ReLUGate, "sigmoid": SigmoidGate, "identity": IdentityGate,
}


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


class SqErrGate(Gate):
    """The seed's MSE: E = (1/k) sum_j (o_j - t_j)^2 per example, then the batch mean.

    dE/do = 2 (o - t) / (k B) (the slides' o - t up to the mean's constant factor) and
    dE/dt = -dE/do. With example ``weights`` the batch mean becomes
    sum_i w_i E_i / max(sum w, 1) and the 1/B factor becomes w_i / max(sum w, 1).
    """

    label = "sqerr"

    def forward(self, o, t, weights=None):
        o, t = jnp.asarray(o), jnp.asarray(t)
        per = _sq_err_per_example(o, t)
        self.o, self.t = o, t
        self.scale = _example_scale(per, weights) if o.ndim >= 2 else 1.0
        return _reduce(per, weights) if o.ndim >= 2 else per

    def backward(self, grad_out):
        do = _sq_err_grad(self.o, self.t, self.scale) * grad_out
        return do, -do


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
        per, self.q, self.logq = _softmax_xent_forward(z, t, self.temperature)
        self.t = t
        self.scale = _example_scale(per, weights) if z.ndim >= 2 else 1.0
        return _reduce(per, weights) if z.ndim >= 2 else per

    def backward(self, grad_out):
        dz = _softmax_xent_grad(self.q, self.t, self.temperature, self.scale) * grad_out
        if jnp.issubdtype(self.t.dtype, jnp.integer):
            return dz, None
        return dz, -self.logq * (self.scale * grad_out)

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropyGate(temperature={self.temperature!r})"


# ---------------------------------------------------------------------------------------------
# Computation graph
# ---------------------------------------------------------------------------------------------

class Value:
    """A node of a ``Graph``: a leaf (input / parameter / constant) or a gate's output.

    Attributes:
        name: unique name in its graph.
        value: forward value (Python float or array).
        grad: dL/d(value) after ``Graph.backward`` (``None`` if not reached).
        gate: the gate producing it (``None`` for leaves).
        parents: the input nodes of ``gate``.
        param: whether ``Graph.sgd_step`` updates it (leaves only).
    """

    __slots__ = ("name", "value", "grad", "gate", "parents", "param", "kwargs")

    def __init__(self, name, value, gate=None, parents=(), param=False, kwargs=None):
        self.name, self.value, self.grad = name, value, None
        self.gate, self.parents, self.param = gate, tuple(parents), param
        self.kwargs = kwargs or {}

    @property
    def op(self) -> str:
        if self.gate is None:
            return "param" if self.param else "const"
        return self.gate.label

    def __repr__(self) -> str:
        return f"Value({self.name!r}, op={self.op!r}, value={self.value!r}, grad={self.grad!r})"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:g}"
    a = jnp.asarray(v)
    if a.ndim == 0:
        return f"{float(a):g}"
    return f"array{tuple(a.shape)} |.|={float(jnp.linalg.norm(a.astype(jnp.float32))):.4g}"


class Graph:
    """A computation graph of gates: build with ``input``/``const``/``apply``, then
    ``forward()``, ``backward(output)``, ``sgd_step(lr)``.

    Nodes are kept in creation order, which is a topological order (a gate's inputs exist
    before it), so forward walks that list and backward walks it in reverse.

    Example (the lectures' f = (x + y) z)::

        g = Graph()
        x, y, z = g.input("x", -2.0), g.input("y", 5.0), g.input("z", -4.0)
        q = g.apply(PlusGate(), x, y, name="q")
        f = g.apply(StarGate(), q, z, name="f")
        g.forward(); grads = g.backward(f)   # {"x": -4, "y": -4, "z": 3, "q": -4, "f": 1}
    """

    def __init__(self):
        self.nodes: list[Value] = []
        self._by_name: dict[str, Value] = {}

    def _add(self, node: Value) -> Value:
        if node.name in self._by_name:
            raise ValueError(f"duplicate node name {node.name!r}")
        self.nodes.append(node)
        self._by_name[node.name] = node
        return node

    def __getitem__(self, name: str) -> Value:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def input(self, name: str, value, *, param: bool = True) -> Value:
        """A leaf. By default it is a parameter, updated by ``sgd_step`` (the seed updates
        all of x, y, z); pass ``param=False`` (or use ``const``) for data such as targets."""
        return self._add(Value(name, value, param=param))

    def const(self, name: str, value) -> Value:
        """A leaf that ``sgd_step`` never changes (inputs x, targets t)."""
        return self.input(name, value, param=False)

    def apply(self, gate: Gate, *inputs: Value, name: str | None = None, **kwargs) -> Value:
        """Add ``gate`` applied to ``inputs``; computes its value now. Keyword arguments (e.g.
        ``weights=``) are passed to ``gate.forward`` on every forward pass."""
        for v in inputs:
            if self._by_name.get(v.name) is not v:
                raise ValueError(f"node {v.name!r} does not belong to this graph")
        if name is None:
            name = f"{gate.label}{len(self.nodes)}"
        node = Value(name, gate.forward(*(v.value for v in inputs), **kwargs), gate=gate,
                     parents=inputs, kwargs=kwargs)
        return self._add(node)

    def forward(self) -> None:
        """Recompute every gate's output from the current leaf values (stores the caches)."""
        for node in self.nodes:
            if node.gate is not None:
                node.value = node.gate.forward(*(p.value for p in node.parents), **node.kwargs)

    def backward(self, output: Value) -> dict[str, Any]:
        """Backpropagate from ``output`` (dL/dL = 1) in reverse topological order.

        Gradients are *accumulated* (summed) where a value feeds several gates. Nodes that
        do not influence ``output`` keep ``grad = None``.

        Returns:
            ``{name: dL/dnode}`` for every node reached (leaves and intermediates).
        """
        for node in self.nodes:
            node.grad = None
        v = output.value
        output.grad = 1.0 if isinstance(v, (int, float)) else jnp.ones_like(v)
        for node in reversed(self.nodes):
            if node.gate is None or node.grad is None:
                continue
            grads = node.gate.backward(node.grad)
            if len(node.parents) == 1:
                grads = (grads,)
            for parent, g in zip(node.parents, grads):
                if g is None:
                    continue
                parent.grad = g if parent.grad is None else parent.grad + g
        return {n.name: n.grad for n in self.nodes if n.grad is not None}

    def params(self) -> list[Value]:
        """The leaves ``sgd_step`` updates."""
        return [n for n in self.nodes if n.gate is None and n.param]

    def sgd_step(self, lr) -> None:
        """theta <- theta - lr * dL/dtheta for every parameter leaf (the seed's
        [x, y, z] <- [x, y, z] - eta grad f), then rerun ``forward()``. Requires ``backward``
        first; gradients are cleared afterwards because they are stale."""
        ps = self.params()
        if not any(p.grad is not None for p in ps):
            raise RuntimeError("call backward(output) before sgd_step")
        for p in ps:
            if p.grad is not None:
                p.value = p.value - lr * p.grad
        for node in self.nodes:
            node.grad = None
        self.forward()

    def trace(self) -> list[dict[str, Any]]:
        """One row per node, in forward order: name, op, input names, value, grad."""
        return [{"name": n.name, "op": n.op, "inputs": [p.name for p in n.parents],
                 "value": n.value, "grad": n.grad} for n in self.nodes]

    def table(self) -> str:
        """``trace()`` as a fixed-width text table (scalars shown exactly, arrays by norm)."""
        rows = [("node", "op", "inputs", "value", "grad")]
        for r in self.trace():
            rows.append((r["name"], r["op"], ",".join(r["inputs"]) or "-", _fmt(r["value"]),
                         _fmt(r["grad"])))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def seed_example(x=-2.0, y=5.0, z=-4.0) -> Graph:
    """The lectures' f(x, y, z) = (x + y) z = q z as a graph (nodes x, y, z, q, f; x, y, z are
    parameters). At (-2, 5, -4): q = 3, f = -12; df/dx = df/dy = -4, df/dz = 3."""
    g = Graph()
    xv, yv, zv = g.input("x", x), g.input("y", y), g.input("z", z)
    q = g.apply(PlusGate(), xv, yv, name="q")
    g.apply(StarGate(), q, zv, name="f")
    return g


def mlp_graph(params, x, y, *, activation: str = "tanh", loss: str = "ce", temperature=1.0,
              fused: bool = False) -> Graph:
    """The lectures' MLP graphs built from gates, one node per operation.

    Regression (``loss="mse"``): x -> @W1 -> +b1 -> phi -> ... -> @WL -> +bL -> SqErr(t) -> E.
    Classification (``loss="ce"``): ... -> softmax(T) -> CrEnt(t) -> L, or with ``fused=True``
    one SoftmaxCrossEntropyGate(T). Parameters are named ``W1, b1, ..., WL, bL`` (1-based, as
    the slides' W^1, W^2); the loss node is ``"loss"``.
    """
    if loss not in ("ce", "mse"):
        raise ConfigError(f"unknown loss {loss!r}; choose ce or mse")
    gate_cls = GATES_BY_ACTIVATION[activation]
    g = Graph()
    h = g.const("x", x)
    t = g.const("t", y)
    L = len(params)
    for i, layer in enumerate(params, start=1):
        W, b = g.input(f"W{i}", layer["W"]), g.input(f"b{i}", layer["b"])
        s = g.apply(MatMulGate(), h, W, name=f"xW{i}")
        s = g.apply(BiasAddGate(), s, b, name=f"s{i}")
        h = s if i == L else g.apply(gate_cls(), s, name=f"o{i}")
    if loss == "mse":
        g.apply(SqErrGate(), h, t, name="loss")
    elif fused:
        g.apply(SoftmaxCrossEntropyGate(temperature), h, t, name="loss")
    else:
        q = g.apply(SoftmaxGate(temperature), h, name="q")
        g.apply(CrEntGate(), q, t, name="loss")
    return g


# ---------------------------------------------------------------------------------------------
# Vectorised MLP backward (pure; jit / vmap / scan compatible)
# ---------------------------------------------------------------------------------------------

def mlp_value_and_grad(params, x, y, *, activation="tanh", loss="ce", temperature=1.0,
                       weights=None, masks=None):
    """Loss and gradients of ``jaxmlp.objective.batch_loss`` by a hand-written backward pass.

    Forward caches each layer's input ``a_{l-1}`` and activation output ``o_l``; backward
    applies the delta rule from the output layer down::

        delta_L = dLoss/ds_L                              (loss gate, fused with softmax for CE)
        dW_l = a_{l-1}^T delta_l,   db_l = sum_batch delta_l
        delta_{l-1} = (delta_l W_l^T) [* mask_{l-1}] * phi'(s_{l-1})

    with phi' formed from the cached outputs (tanh: 1 - o^2, sigmoid: o (1 - o), ReLU: o > 0)
    by the same functions the gates use. The input-layer delta ``dLoss/dx`` is not computed.

    Args:
        params: list of ``{"W": (fan_in, fan_out), "b": (fan_out,)}`` layers (1 or more).
        x: (B, d_in) inputs (or (d_in,) for one example).
        y: (B,) integer labels or (B, K) soft / one-hot targets for ``loss="ce"``; (B, k)
            targets for ``loss="mse"``.
        activation: hidden activation: "tanh", "relu", "sigmoid" or "identity" (static).
        loss: "ce" (cross-entropy on softmax(logits / temperature)) or "mse" (static).
        temperature: softmax temperature T > 0 (may be traced; ignored by "mse").
        weights: optional (B,) example weights; loss = sum w_i l_i / max(sum w, 1).
        masks: optional per-hidden-layer unit masks, each (h_l,), multiplied into hidden
            outputs after the activation (as ``jaxmlp.nn.forward``).

    Returns:
        ``(loss, grads)``: scalar loss and a pytree with the structure, shapes and dtypes of
        ``jax.grad(batch_loss)`` (a list of ``{"W", "b"}`` dicts).
    """
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; "
                          f"choose one of {', '.join(ACTIVATIONS)}")
    if loss not in ("ce", "mse"):
        raise ConfigError(f"unknown loss {loss!r}; choose ce or mse")
    if len(params) == 0:
        raise ConfigError("params must contain at least one layer")
    phi, phi_backward = ACTIVATIONS[activation], ACTIVATION_BACKWARDS[activation]
    single = jnp.ndim(x) == 1
    if single:  # one example: same objective as a batch of one
        x = x[None]
        y = jnp.asarray(y)[None]
        weights = None if weights is None else jnp.reshape(weights, (1,))

    # Forward, caching each layer's input a_{l-1} and each hidden activation output o_l.
    inputs, outs = [], []
    a = x
    last = len(params) - 1
    for i, layer in enumerate(params):
        inputs.append(a)
        s = a @ layer["W"] + layer["b"][None, :]
        if i == last:
            break
        o = phi(s)
        outs.append(o)
        a = o if masks is None else o * masks[i][None, :]

    # Loss gate: value and delta_L = dLoss/ds_L.
    if loss == "ce":
        per, q, _ = _softmax_xent_forward(s, y, temperature)
        scale = _example_scale(per, weights)
        delta = _softmax_xent_grad(q, y, temperature, scale)
    else:
        per = _sq_err_per_example(s, y)
        scale = _example_scale(per, weights)
        delta = _sq_err_grad(s, y, scale)
    value = _reduce(per, weights)

    # Backward, layer by layer (delta rule).
    grads = [None] * len(params)
    for i in range(last, -1, -1):
        W = params[i]["W"]
        grads[i] = {"W": weight_gradient(inputs[i], delta).astype(W.dtype),  # a^T delta
                    "b": jnp.sum(delta, axis=0).astype(params[i]["b"].dtype)}
        if i == 0:
            break
        g = delta @ W.T                      # dLoss/d(a_{i-1})
        if masks is not None:
            g = g * masks[i - 1][None, :]
        delta = g if phi_backward is None else phi_backward(g, outs[i - 1])
    return value, grads


def mlp_grad(params, x, y, *, activation="tanh", loss="ce", temperature=1.0, weights=None,
             masks=None):
    """Only the gradients of ``mlp_value_and_grad`` (same pytree as ``jax.grad(batch_loss)``)."""
    return mlp_value_and_grad(params, x, y, activation=activation, loss=loss,
                              temperature=temperature, weights=weights, masks=masks)[1]
