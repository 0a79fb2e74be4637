"""What ``fit`` and ``sweep`` accept as data: a ``jaxmlp.data.Splits``, or tuples of raw arrays
validated and wrapped as ``ArraySplits`` (``as_splits``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxmlp import registry
from jaxmlp.errors import ConfigError, DataError
from jaxmlp.memory import check_fits


@dataclass
class ArraySplits:
    """Minimal splits container for ``fit`` called on raw arrays."""
    X_train: Any
    y_train: Any
    X_val: Any = None
    y_val: Any = None
    X_test: Any = None
    y_test: Any = None
    soft: bool = False  # y are (n, K) probability targets for cross-entropy

    @property
    def task(self) -> str:
        y = np.asarray(self.y_train)
        return "classification" if self.soft or np.issubdtype(y.dtype, np.integer) else "regression"

    @property
    def n_classes(self):
        if self.task != "classification":
            return None
        if self.soft:
            return int(np.asarray(self.y_train).shape[1])
        ys = [np.asarray(a) for a in (self.y_train, self.y_val, self.y_test) if a is not None]
        return int(max(int(a.max()) for a in ys if a.size)) + 1

    @property
    def n_features(self) -> int:
        return int(np.asarray(self.X_train).shape[1])

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.task == "classification" else int(np.asarray(self.y_train).shape[1])


def as_splits(data, loss: str = "auto"):
    """Accept a ``jaxmlp.data.Splits``, or ``(X, y)`` / ``(X_tr, y_tr, X_te, y_te)`` /
    ``(X_tr, y_tr, X_val, y_val, X_te, y_te)`` tuples of arrays: integer y = classification,
    float y = regression, except that with ``loss="ce"`` (a registry loss with ``soft_targets``)
    a float (n, K) y holds probability targets (one-hot or soft, e.g. a teacher's softened
    outputs for distillation). Integer y stay labels for every loss (mse / huber compare the
    outputs with their one-hot)."""
    if not isinstance(data, (tuple, list)):
        return data
    from jaxmlp.data import validate_arrays
    arrs = [np.asarray(a) for a in data]
    if len(arrs) not in (2, 4, 6):
        raise ConfigError("data must be Splits or a tuple of 2, 4 or 6 arrays")
    for i in range(1, len(arrs), 2):
        if arrs[i].ndim == 1 and not np.issubdtype(arrs[i].dtype, np.integer):
            arrs[i] = arrs[i][:, None]
    soft = (loss != "auto" and registry.loss(loss).soft_targets and not np.issubdtype(arrs[1].dtype, np.integer) and arrs[1].ndim == 2
            and arrs[1].shape[1] >= 2)
    task = "classification" if np.issubdtype(arrs[1].dtype, np.integer) else "regression"
    n_classes = None
    if task == "classification":
        n_classes = max(int(a.max()) for a in arrs[1::2] if a.size) + 1
    names = {2: ("train",), 4: ("train", "test"), 6: ("train", "val", "test")}[len(arrs)]
    for i in range(0, len(arrs), 2):
        if i > 0 and arrs[i].size == 0:
            continue
        name = names[i // 2]
        arrs[i], arrs[i + 1] = validate_arrays(arrs[i], arrs[i + 1], task, n_classes, name=name,
                                               warn_constant=i == 0, min_classes=2 if i == 0 else 1)
        if arrs[i].shape[1] != arrs[0].shape[1]:
            raise DataError(f"all splits need {arrs[0].shape[1]} features, got {arrs[i].shape[1]}")
        if soft:
            _check_probabilities(arrs[i + 1], arrs[1].shape[1], name)
    if len(arrs) == 4:
        arrs = [arrs[0], arrs[1], None, None, arrs[2], arrs[3]]
    return ArraySplits(*arrs, soft=soft)


def _check_probabilities(y: np.ndarray, k: int, name: str) -> None:
    """Soft targets must be rows of K non-negative probabilities summing to 1."""
    if y.shape[1] != k or k < 2:
        raise DataError(f"{name}: probability targets need the same K >= 2 columns, got {y.shape}")
    if (y < 0).any() or not np.allclose(y.sum(axis=1), 1.0, atol=1e-4):
        raise DataError(f"{name}: probability targets must be non-negative rows summing to 1")


def n_rows(a) -> int:
    """Rows of a split's array (0 for a missing split)."""
    return 0 if a is None else int(np.asarray(a).shape[0])


def tree_nbytes(tree) -> int:
    """Bytes of the arrays (or ``jax.ShapeDtypeStruct``s) in ``tree``."""
    import jax
    return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
               for a in jax.tree.leaves(tree) if hasattr(a, "dtype"))


def check_training_memory(state_bytes: int, splits, what: str) -> None:
    """``ConfigError`` (``jaxmlp.memory.check_fits``) when training cannot fit on the default
    backend: ``state_bytes`` (a lower bound of the train state and gradients it holds at once)
    plus the data's arrays exceed the memory available."""
    import jax
    data = [getattr(splits, k) for k in ("X_train", "y_train", "X_val", "y_val", "X_test",
                                         "y_test")]
    check_fits(state_bytes + tree_nbytes(data), what,
               "use fewer or narrower hidden layers (--hidden), fewer models or fewer rows",
               platform=jax.default_backend())
