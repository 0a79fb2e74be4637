"""The built-in data sets: the one table of names (:data:`DATASETS`, name -> loader).

:func:`~jaxmlp.data.load.load_dataset` looks names up here, and a help text can list
:data:`NAMES`. This module imports nothing heavy (no numpy): each loader imports its
generator when called, so listing the names costs nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from jaxmlp.data.dataset import Dataset


def _bundled(task: str, name: str):
    def load(n_samples: int | None = None, noise: float | None = None) -> Dataset:
        from jaxmlp.data.bundled import bundled_dataset  # the files, without importing sklearn
        return bundled_dataset(name, task, n_samples)
    load.__doc__ = (f"scikit-learn's bundled ``{name}`` set ({task}), read from its files; "
                    "``n_samples`` keeps a seeded random subset, ``noise`` is ignored.")
    return load


def _logic(name: str):
    def load(n_samples: int | None = None, noise: float | None = None) -> Dataset:
        from jaxmlp.data.synthetic import make_logic
        return make_logic(name)
    load.__doc__ = f"The 4 boolean points labelled by {name.upper()}; n_samples/noise ignored."
    return load


def _x2(n_samples=None, noise=None) -> Dataset:
    """y = x^2 on [-1, 1]: default 512 points, noise 0."""
    from jaxmlp.data.synthetic import make_x2
    return make_x2(512 if n_samples is None else n_samples, 0.0 if noise is None else noise)


def _spirals(n_samples=None, noise=None) -> Dataset:
    """Two spirals: default 1000 points, noise 0.1."""
    from jaxmlp.data.synthetic import make_spirals
    return make_spirals(1000 if n_samples is None else n_samples, 0.1 if noise is None else noise)


def _car(n_samples=None, noise=None) -> Dataset:
    """Car sensors -> steering, throttle: default 4000 readings, noise 0.05."""
    from jaxmlp.data.synthetic import make_car_sensor
    return make_car_sensor(4000 if n_samples is None else n_samples,
                           0.05 if noise is None else noise)


def _teacher(n_samples=None, noise=None) -> Dataset:
    """Teacher-MLP labels: default 10000 x 64 (not 784, to stay quick), 10 classes, hidden 256;
    ``noise`` is the label-noise fraction (default 0)."""
    from jaxmlp.data.synthetic import make_teacher
    return make_teacher(10000 if n_samples is None else n_samples, n_features=64,
                        label_noise=0.0 if noise is None else noise)


#: Built-in data sets: name -> ``loader(n_samples=None, noise=None) -> Dataset``.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": _bundled("classification", "digits"),
    "iris": _bundled("classification", "iris"),
    "wine": _bundled("classification", "wine"),
    "breast_cancer": _bundled("classification", "breast_cancer"),
    "diabetes": _bundled("regression", "diabetes"),
    "xor": _logic("xor"),
    "and": _logic("and"),
    "or": _logic("or"),
    "x2": _x2,
    "square": _x2,
    "spirals": _spirals,
    "car_sensor": _car,
    "teacher": _teacher,
}

#: Second names of a set in :data:`DATASETS`: alias -> the name a help text shows.
ALIASES = {"square": "x2"}

#: The built-in names without aliases, in table order (what a help text lists).
NAMES = tuple(name for name in DATASETS if name not in ALIASES)
