"""The one definition of every activation and loss: the maths, what the hand-derived backward
needs, the default init, the task. Every other module reads names and functions from here.

Adding an activation or a loss is one entry in ``ACTIVATIONS`` / ``LOSSES`` below: the forward
pass (``jaxmlp.nn``), the losses (``jaxmlp.losses``), autodiff (``jaxmlp.objective``), the
hand-derived backward and its gates (``jaxmlp.backprop``), gradcheck, the config's validation
and the CLI's choices all pick it up.

Importing this module does not import JAX (the CLI's ``--help`` and the config's validation
read the names before JAX loads): the functions reach ``jax`` / ``jax.numpy`` through lazy
module handles that import on first use, i.e. when a function is first called or traced.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable

from jaxmlp.errors import ConfigError


class _LazyModule:
    """A module handle that imports the module on first attribute access."""

    def __init__(self, name: str):
        self._name, self._module = name, None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


jax = _LazyModule("jax")
jnp = _LazyModule("jax.numpy")

TASKS = ("classification", "regression")


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Activation:
    """One elementwise activation o = phi(s).

    Attributes:
        name: the name configs and the CLI use.
        forward: ``s -> o``.
        grad_from: what the hand-derived backward keeps from the forward pass to form phi'(s):
            ``"output"`` (o, e.g. tanh: 1 - o^2), ``"preact"`` (s, e.g. GELU) or ``"none"``
            (phi' = 1: the gradient passes through).
        derivative: phi'(s) as a function of the kept value (o or s); ``None`` for "none".
        init: the weight init ``init="auto"`` picks ("glorot", "he" or "lecun").
        backward: ``(g, kept) -> g * phi'(s)``, the backward of the activation gate; when not
            given it is ``g * derivative(kept)`` (``None`` for "none").
    """
    name: str
    forward: Callable
    grad_from: str
    derivative: Callable | None
    init: str
    backward: Callable | None = None

    def __post_init__(self):
        if self.grad_from not in ("output", "preact", "none"):
            raise ValueError(f"{self.name}: grad_from must be output, preact or none")
        if (self.derivative is None) != (self.grad_from == "none"):
            raise ValueError(f"{self.name}: a derivative is needed unless grad_from is none")
        if self.backward is None and self.derivative is not None:
            derivative = self.derivative
            object.__setattr__(self, "backward", lambda g, kept: g * derivative(kept))


def identity(s):
    """The identity activation, o = s."""
    return s


def tanh(s):
    """o = tanh(s)."""
    return jnp.tanh(s)


def tanh_grad_from_output(o):
    """o = tanh(s): do/ds = 1 - o^2 (from the output, no second tanh)."""
    return 1.0 - o * o


def relu(s):
    """o = max(0, s)."""
    return jax.nn.relu(s)


def relu_grad_from_output(o):
    """o = max(0, s): do/ds = 1 if s > 0 else 0 (0 at the kink, as ``jax.nn.relu``)."""
    return (o > 0).astype(o.dtype)


def _relu_backward(g, o):
    # Route g to the positive units: a select, cheaper than multiplying by a 0/1 mask.
    return jnp.where(o > 0, g, 0.0)


def sigmoid(s):
    """o = sigma(s) = 1 / (1 + e^-s)."""
    return jax.nn.sigmoid(s)


def sigmoid_grad_from_output(o):
    """o = sigma(s): sigma'(s) = sigma(s) (1 - sigma(s)) = o (1 - o)."""
    return o * (1.0 - o)


def gelu(s):
    """GELU, exact form: o = s Phi(s), Phi the standard normal CDF (``approximate=False``)."""
    return jax.nn.gelu(s, approximate=False)


def gelu_grad(s):
    """o = s Phi(s): do/ds = Phi(s) + s phi(s), phi the standard normal density.

    Phi(s) = erfc(-s / sqrt 2) / 2, the very expression ``jax.nn.gelu`` computes (accurate for
    negative s, and XLA shares it with the forward pass)."""
    cdf = 0.5 * jax.lax.erfc(-s * math.sqrt(0.5))
    pdf = jnp.exp(-0.5 * (s * s)) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf + s * pdf


def silu(s):
    """SiLU (swish): o = s sigma(s)."""
    return jax.nn.silu(s)


def silu_grad(s):
    """o = s sigma(s): do/ds = sigma(s) + s sigma(s) (1 - sigma(s)) = sigma(s) (1 + s (1 - sigma(s)))."""
    sig = jax.nn.sigmoid(s)
    return sig * (1.0 + s * (1.0 - sig))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("tanh", tanh, "output", tanh_grad_from_output, init="glorot"),
    Activation("relu", relu, "output", relu_grad_from_output, init="he",
               backward=_relu_backward),
    Activation("sigmoid", sigmoid, "output", sigmoid_grad_from_output, init="glorot"),
    Activation("identity", identity, "none", None, init="lecun"),
    Activation("gelu", gelu, "preact", gelu_grad, init="he"),
    Activation("silu", silu, "preact", silu_grad, init="he"),
)}


#: Initialisation schemes: the weight variance as a function of (fan_in, fan_out). An
#: activation's ``init`` names its default; ``init="auto"`` means that default.
INIT_VARIANCE: dict[str, Callable[[int, int], float]] = {
    "lecun": lambda fi, fo: 1.0 / fi,
    "glorot": lambda fi, fo: 2.0 / (fi + fo),
    "he": lambda fi, fo: 2.0 / fi,
}


def init_names() -> tuple[str, ...]:
    """Init names a config accepts ("auto": the activation's own)."""
    return ("auto", *INIT_VARIANCE)


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Loss:
    """One training loss on the network's last-layer outputs (identity output activation).

    Attributes:
        name: the name configs and the CLI use.
        tasks: the data tasks it applies to. "classification": outputs are logits, targets
            integer labels (B,) (or, for ``soft_targets`` losses, probabilities (B, K));
            "regression": targets shaped like the outputs (B, k). A residual loss (mse, huber:
            a function of o - t) applies to both: on integer labels it compares the outputs
            with the labels' one-hot, built inside ``per_example`` / ``value_and_grad`` (the
            data keep their int labels).
        per_example: ``(out, y, temperature) -> (B,)`` losses (autodiff differentiates this).
        value_and_grad: ``(out, y, temperature, scale) -> (per_example, delta)`` for the
            hand-derived backward, with ``delta`` = d(sum_i scale_i l_i)/d(out), (B, k);
            ``scale`` is the batch reduction's dLoss/dl_i: a float (1/B) or a (B, 1) array.
        auto_for: the task for which ``loss="auto"`` picks this loss (``None``: never).
        title: what the loss is called in words (error messages).
        soft_targets: float (B, K) targets are class probabilities (cross-entropy; also means
            classification metrics for them); otherwise float targets are regression targets.
        residual: a function of o - t (so dl/dt = -dl/do for float targets); the temperature
            has no effect on it.
    """
    name: str
    tasks: tuple
    per_example: Callable
    value_and_grad: Callable
    auto_for: str | None = None
    title: str = ""
    soft_targets: bool = False
    residual: bool = False

    def check_targets(self, out, y) -> None:
        """``ConfigError`` unless a residual loss's targets are integer labels (B,) of a
        classification set or shaped like the outputs (a clear error, not a broadcasting one)."""
        if not self.residual:
            return
        if is_labels(y):
            if "classification" not in self.tasks or tuple(y.shape) != tuple(out.shape[:-1]):
                raise ConfigError(
                    f"{self.name}: integer class labels must be one per example "
                    f"{tuple(out.shape[:-1])}, got {tuple(y.shape)}")
        elif tuple(y.shape) != tuple(out.shape):
            raise ConfigError(
                f"{self.name} is a regression loss here: float targets must be shaped like the "
                f"outputs {tuple(out.shape)}, got {tuple(y.shape)} (class labels must be "
                f"integers)")


def is_labels(y) -> bool:
    """Integer class labels (as opposed to float regression / probability targets)."""
    return jnp.issubdtype(y.dtype, jnp.integer)


def dense_targets(out, y):
    """A residual loss's targets: integer labels (B,) as their one-hot (B, K) in ``out``'s
    dtype (the classification variant: outputs against the one-hot); float targets as given."""
    if is_labels(y):
        return jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype)
    return y


def mse_per_example(pred, target):
    """E = (1/k) sum_j (o_j - t_j)^2 for each example: (B, k) -> (B,). Integer labels (B,)
    are compared as their one-hot."""
    target = dense_targets(pred, target)
    return jnp.mean(jnp.square(pred - target), axis=-1)


def _mse_value_and_grad(o, t, temperature, scale):
    """dE/do = 2 (o - t) / k, times the batch reduction's dLoss/dE_i (t: the one-hot of
    integer labels)."""
    t = dense_targets(o, t)
    return mse_per_example(o, t), (o - t) * (scale * (2.0 / o.shape[-1]))


HUBER_DELTA = 1.0


def huber_per_example(pred, target):
    """Huber loss with delta = 1, mean over outputs: (1/k) sum_j h(o_j - t_j), where
    h(r) = r^2 / 2 for |r| <= delta and delta (|r| - delta / 2) beyond. (B, k) -> (B,).
    Integer labels (B,) are compared as their one-hot."""
    target = dense_targets(pred, target)
    a = jnp.abs(pred - target)
    quadratic = jnp.minimum(a, HUBER_DELTA)
    return jnp.mean(0.5 * quadratic * quadratic + HUBER_DELTA * (a - quadratic), axis=-1)


def _huber_value_and_grad(o, t, temperature, scale):
    """dh/dr = clip(r, -delta, delta), so dE/do = clip(o - t, -delta, delta) / k (t: the
    one-hot of integer labels)."""
    t = dense_targets(o, t)
    delta = jnp.clip(o - t, -HUBER_DELTA, HUBER_DELTA)
    return huber_per_example(o, t), delta * (scale * (1.0 / o.shape[-1]))


def cross_entropy_per_example(logits, labels, temperature=1.0):
    """l = -sum_j t_j log q_j with q = softmax(logits / T), per example.

    Args:
        logits: (B, K) scores.
        labels: (B,) integer class indices, or (B, K) one-hot / soft target probabilities.
        temperature: T > 0 (scalar or traced array).

    Returns:
        (B,) losses in nats.
    """
    logp = jax.nn.log_softmax(logits / temperature, axis=-1)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        # the label's log-probability picked by a one-hot select, not a gather: the same value
        # (one term plus exact zeros) and an elementwise gradient instead of a scatter-add,
        # which XLA:CPU compiles and runs slower (`git show 77c33ef:BENCHMARKS.md`, "Third
        # round")
        classes = jnp.arange(logp.shape[-1], dtype=labels.dtype).reshape(
            (1,) * labels.ndim + logp.shape[-1:])
        hit = labels[..., None] == classes
        return -jnp.sum(jnp.where(hit, logp, 0.0), axis=-1)
    return -jnp.sum(labels * logp, axis=-1)


def softmax_xent_forward(z, t, temperature):
    """The hand-derived backward's cross-entropy forward: per-example
    l = -sum_j t_j log q_j, q = softmax(z / T), returned with q and log q (its cache)."""
    logq = jax.nn.log_softmax(z / temperature, axis=-1)
    if jnp.issubdtype(t.dtype, jnp.integer):
        per = -jnp.take_along_axis(logq, t[..., None].astype(jnp.int32), axis=-1)[..., 0]
    else:
        per = -jnp.sum(t * logq, axis=-1)
    return per, jnp.exp(logq), logq


def softmax_xent_grad(q, t, temperature, scale):
    """dl/dz = (q sum_j t_j - t) / T (= (q - t) / T when t sums to 1), times dLoss/dl_i.

    Integer labels use the one-hot form (rows sum to 1); soft targets keep the sum so that
    unnormalised targets get the exact gradient too.
    """
    if jnp.issubdtype(t.dtype, jnp.integer):
        d = q - jax.nn.one_hot(t, q.shape[-1], dtype=q.dtype)
    else:
        d = q * jnp.sum(t, axis=-1, keepdims=True) - t
    return d * (scale / temperature)


def _ce_value_and_grad(z, t, temperature, scale):
    per, q, _ = softmax_xent_forward(z, t, temperature)
    return per, softmax_xent_grad(q, t, temperature, scale)


LOSSES: dict[str, Loss] = {l.name: l for l in (
    Loss("ce", ("classification",), cross_entropy_per_example, _ce_value_and_grad,
         auto_for="classification", title="cross-entropy", soft_targets=True),
    # the residual losses: regression targets, or the one-hot of a classification set's labels
    # (the temperature has no effect on them)
    Loss("mse", TASKS, lambda o, t, temperature=1.0: mse_per_example(o, t),
         _mse_value_and_grad, auto_for="regression", title="mean squared error", residual=True),
    Loss("huber", TASKS, lambda o, t, temperature=1.0: huber_per_example(o, t),
         _huber_value_and_grad, title="Huber loss, delta 1", residual=True),
)}


# ---------------------------------------------------------------------------------------------
# Look-ups
# ---------------------------------------------------------------------------------------------

def activation_names() -> tuple[str, ...]:
    """Activation names a config accepts."""
    return tuple(ACTIVATIONS)


def loss_names() -> tuple[str, ...]:
    """Loss names a config accepts ("auto" picks by task)."""
    return ("auto", *LOSSES)


def activation(name: str) -> Activation:
    """The activation called ``name``; ``ConfigError`` for an unknown name."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown activation {name!r}; "
                          f"choose one of {', '.join(ACTIVATIONS)}") from None


def loss(name: str) -> Loss:
    """The loss called ``name`` (not "auto": see ``resolve_loss``); ``ConfigError`` if unknown."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def _auto_loss(task: str) -> str:
    for entry in LOSSES.values():
        if entry.auto_for == task:
            return entry.name
    raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def resolve_loss(name: str, task: str, temperature=1.0) -> str:
    """The loss ``name`` means for a data set of ``task``: "auto" picks the loss whose
    ``auto_for`` is the task; any other loss must be one for that task (``ConfigError``).
    ``temperature`` (a value or several, a sweep's) must be 1 for a loss it has no effect on
    (a residual loss): a temperature that silently changes nothing is a ``ConfigError``."""
    if name == "auto":
        name = _auto_loss(task)
    entry = loss(name)
    if task not in entry.tasks:
        other = ", ".join(l.name for l in LOSSES.values() if task in l.tasks)
        raise ConfigError(f"{name} ({entry.title}) is a {' / '.join(entry.tasks)} loss but the "
                          f"data set is {task}; use --loss {other}")
    temps = temperature if isinstance(temperature, (list, tuple, set)) else [temperature]
    ignored = sorted({float(t) for t in temps} - {1.0})
    if entry.residual and ignored:
        raise ConfigError(f"temperature {ignored[0]:g}: the temperature scales the "
                          f"cross-entropy's softmax and has no effect on the {name} loss "
                          f"({entry.title}); leave it at 1 or use --loss ce")
    return name
