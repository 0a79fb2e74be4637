"""Hand-derived backpropagation: gates, a small computation-graph engine, and a vectorised
layer-wise MLP backward that returns the same pytree as ``jax.grad``.

Three modules, each built on the one before:

1. ``gates``: the lectures' "plug-and-play" units; each gate's backward sits next to its
   forward, with the activations' and losses' derivatives taken from ``jaxmlp.registry``.
2. ``graph``: composes gates into a computation graph (forward in topological order, backward
   with gradient accumulation, ``sgd_step``); ``seed_example()`` is the lectures'
   f(x, y, z) = (x + y) z, ``mlp_graph`` an MLP with its loss.
3. ``mlp``: ``mlp_value_and_grad`` caches the forward pass and applies the delta rule layer by
   layer; pure and jit/vmap/scan friendly. Drop-in for
   ``jax.value_and_grad(jaxmlp.objective.batch_loss)``.
"""
from __future__ import annotations

from jaxmlp.backprop.gates import (ACTIVATION_BACKWARDS, ACTIVATION_GRADS,
                                   GATES_BY_ACTIVATION, BiasAddGate, CrEntGate, Gate,
                                   IdentityGate, LossGate, MatMulGate, PlusGate, ReLUGate,
                                   SigmoidGate, SoftmaxCrossEntropyGate, SoftmaxGate, SqErrGate,
                                   StarGate, TanhGate, relu_grad_from_output,
                                   sigmoid_grad_from_output, tanh_grad_from_output)
from jaxmlp.backprop.graph import Graph, Value, mlp_graph, seed_example
from jaxmlp.backprop.mlp import mlp_grad, mlp_value_and_grad

__all__ = [
    "Gate", "PlusGate", "StarGate", "MatMulGate", "BiasAddGate", "TanhGate", "ReLUGate",
    "SigmoidGate", "IdentityGate", "SoftmaxGate", "SqErrGate", "LossGate", "CrEntGate",
    "SoftmaxCrossEntropyGate", "GATES_BY_ACTIVATION", "ACTIVATION_GRADS",
    "ACTIVATION_BACKWARDS",
    "tanh_grad_from_output", "relu_grad_from_output", "sigmoid_grad_from_output",
    "Graph", "Value", "seed_example", "mlp_graph",
    "mlp_value_and_grad", "mlp_grad",
]
