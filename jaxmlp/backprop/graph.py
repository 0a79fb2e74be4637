"""A small computation-graph engine over the gates: build a graph, run it forward in
insertion (topological) order, then backward from dL/dL = 1 in reverse order, *accumulating*
gradients where a value feeds several gates; ``sgd_step`` moves parameters against their
gradient. ``seed_example()`` builds the lectures' f(x, y, z) = (x + y) z and ``mlp_graph`` an
MLP with its loss, one node per operation.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxmlp import registry
from jaxmlp.backprop.gates import (GATES_BY_ACTIVATION, BiasAddGate, CrEntGate, Gate,
                                   LossGate, MatMulGate, PlusGate,
                                   SoftmaxCrossEntropyGate, SoftmaxGate, SqErrGate, StarGate)


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

    Regression (``loss="mse"``): x -> @W1 -> +b1 -> phi -> ... -> @WL -> +bL -> SqErr(t) -> E
    (any other registry loss, e.g. "huber": one ``LossGate``).
    Classification (``loss="ce"``): ... -> softmax(T) -> CrEnt(t) -> L, or with ``fused=True``
    one SoftmaxCrossEntropyGate(T). Parameters are named ``W1, b1, ..., WL, bL`` (1-based, as
    the slides' W^1, W^2); the loss node is ``"loss"``.
    """
    registry.loss(loss)  # a ConfigError for an unknown name
    gate_cls = GATES_BY_ACTIVATION[registry.activation(activation).name]
    g = Graph()
    h = g.const("x", x)
    t = g.const("t", y)
    L = len(params)
    for i, layer in enumerate(params, start=1):
        W, b = g.input(f"W{i}", layer["W"]), g.input(f"b{i}", layer["b"])
        s = g.apply(MatMulGate(), h, W, name=f"xW{i}")
        s = g.apply(BiasAddGate(), s, b, name=f"s{i}")
        h = s if i == L else g.apply(gate_cls(), s, name=f"o{i}")
    if loss != "ce":
        g.apply(SqErrGate() if loss == "mse" else LossGate(loss, temperature), h, t, name="loss")
    elif fused:
        g.apply(SoftmaxCrossEntropyGate(temperature), h, t, name="loss")
    else:
        q = g.apply(SoftmaxGate(temperature), h, name="q")
        g.apply(CrEntGate(), q, t, name="loss")
    return g
