"""The data containers: a whole :class:`Dataset` and its train/val/test :class:`Splits`.

Arrays are numpy: ``X`` is ``(n, d)`` float32; ``y`` is ``(n,)`` int32 class labels in
``[0, n_classes)`` for classification or ``(n, k)`` float32 targets for regression.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = ("classification", "regression")


def _class_values(task: str, n_classes, classes) -> tuple | None:
    if task != "classification":
        return None
    return tuple(classes) if classes is not None else tuple(range(int(n_classes)))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set before splitting.

    Attributes:
        X: Inputs, shape ``(n, d)``, float32.
        y: Classification: labels, shape ``(n,)``, int32 in ``[0, n_classes)``.
            Regression: targets, shape ``(n, k)``, float32.
        task: ``"classification"`` or ``"regression"``.
        n_classes: Number of classes (classification), else ``None``.
        name: Short name (registry name or file stem).
        feature_names: Optional column names, length ``d``.
        classes: Classification: the original label values, sorted, ``classes[i]`` the value
            of class id ``i`` (a CSV's targets {10, 20, 30} are ids 0, 1, 2); ``None`` means
            ``0..n_classes-1``. See :attr:`class_values`.
        whole_if_tiny: A set under ``TINY_N`` rows is used whole (train = val = test, with an
            :class:`~jaxmlp.data.splits.UnsplitDataWarning`) instead of split. True for user
            data and the 4-point logic sets; False for built-in sets whose size the caller
            chose (``n_samples``), which are always split (or refused).
    """
    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None
    name: str
    feature_names: tuple[str, ...] | None = None
    classes: tuple | None = None
    whole_if_tiny: bool = True

    @property
    def class_values(self) -> tuple | None:
        """The original label value of each class id (``classes`` or ``0..n_classes-1``);
        ``None`` for regression."""
        return _class_values(self.task, self.n_classes, self.classes)

    @property
    def n_samples(self) -> int:
        """Number of rows ``n``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Input width ``d``."""
        return int(self.X.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width: ``n_classes`` for classification, ``k`` for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y.shape[1])


@dataclass(frozen=True, eq=False)
class Splits:
    """Train/validation/test arrays, standardised with train-only statistics.

    Attributes:
        X_train, X_val, X_test: Inputs, shapes ``(n_*, d)``, float32 (standardised when
            ``DataConfig.standardize``). An empty split has 0 rows.
        y_train, y_val, y_test: Labels ``(n_*,)`` int32, or regression targets ``(n_*, k)``
            float32 (standardised when ``DataConfig.standardize``).
        task, n_classes, name: As in :class:`Dataset`.
        x_mean, x_std: ``(d,)`` float32 statistics of the raw train inputs (std of a constant
            column is 1); zeros / ones when not standardising. ``X_raw = X * x_std + x_mean``.
        y_mean, y_std: ``(k,)`` float32 regression target statistics on the train split (or
            zeros / ones); ``None`` for classification.
        feature_names: Optional column names, length ``d``.
        classes: Classification: the original label value of each class id (as
            :attr:`Dataset.class_values`); ``None`` for regression.
    """
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    name: str
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray | None = None
    y_std: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    classes: tuple | None = None

    @property
    def n_features(self) -> int:
        """Input width ``d``."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width: ``n_classes`` for classification, ``k`` for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.X_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation rows (may be 0)."""
        return int(self.X_val.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows (may be 0)."""
        return int(self.X_test.shape[0])
