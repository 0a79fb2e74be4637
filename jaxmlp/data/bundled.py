"""scikit-learn's bundled data sets read straight from the files it installs.

``import sklearn`` costs 0.5-2 s (it pulls in SciPy); the data sets it ships are small CSV
files in ``sklearn/datasets/data``. This module finds that folder without importing
scikit-learn (``importlib.util.find_spec`` of the top-level package only locates it) and parses
the files the way scikit-learn's loaders do, so the arrays are the ones ``load_digits()`` &c.
return (``tests/test_bundled.py`` compares them). No network: the files come with the package.
:func:`bundled_dataset` wraps them as a :class:`~jaxmlp.data.dataset.Dataset`.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from jaxmlp.data.dataset import Dataset
from jaxmlp.errors import DataError

_BREAST_CANCER_BASE = ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                       "concavity", "concave points", "symmetry", "fractal dimension")
FEATURE_NAMES = {
    "digits": tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8)),
    "iris": ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"),
    "wine": ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
             "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
             "od280/od315_of_diluted_wines", "proline"),
    "breast_cancer": (tuple(f"mean {b}" for b in _BREAST_CANCER_BASE)
                      + tuple(f"{b} error" for b in _BREAST_CANCER_BASE)
                      + tuple(f"worst {b}" for b in _BREAST_CANCER_BASE)),
    "diabetes": ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"),
}


def data_folder() -> Path:
    """``sklearn/datasets/data`` of the installed scikit-learn (not imported)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled data sets come with scikit-learn, which is not installed "
                        "(pip install scikit-learn)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    if not folder.is_dir():
        raise DataError(f"scikit-learn's data folder {folder} is missing")
    return folder


def _labelled_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A file whose first row is ``n_samples,n_features,class names...`` and whose rows are
    features then an integer label (iris, wine, breast_cancer)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        head = next(rows)
        n, d = int(head[0]), int(head[1])
        data = np.empty((n, d))
        target = np.empty(n, dtype=int)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = np.asarray(row[-1], dtype=int)
    return data, target


def _gz_table(path: Path) -> np.ndarray:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return np.loadtxt(f, delimiter="," if path.name.startswith("digits") else None)


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X float64 (n, d), y)`` of a bundled set: integer labels (n,) for the classification
    sets, float targets (n,) for ``diabetes`` (features scaled as ``load_diabetes()`` does:
    centred, unit norm per column)."""
    folder = data_folder()
    if name == "digits":
        table = _gz_table(folder / "digits.csv.gz")
        return table[:, :-1], table[:, -1].astype(int)
    if name in ("iris", "wine", "breast_cancer"):
        return _labelled_csv(folder / {"iris": "iris.csv", "wine": "wine_data.csv",
                                       "breast_cancer": "breast_cancer.csv"}[name])
    if name == "diabetes":
        X = _gz_table(folder / "diabetes_data_raw.csv.gz")
        y = _gz_table(folder / "diabetes_target.csv.gz")
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return X / X.shape[0] ** 0.5, y
    raise DataError(f"no bundled data set {name!r}")


def bundled_dataset(name: str, task: str, n_samples: int | None = None) -> Dataset:
    """The bundled set ``name`` as a Dataset (X float32; y int32 labels or ``(n, 1)`` float32
    targets), with a seeded random subset of ``n_samples`` rows when that is fewer than all."""
    X, y = load_bundled(name)
    X = np.asarray(X, dtype=np.float32)
    if task == "classification":
        y = np.asarray(y, dtype=np.int32)
        ds = Dataset(X=X, y=y, task=task, n_classes=int(y.max()) + 1, name=name,
                     feature_names=FEATURE_NAMES[name])
    else:
        y = np.asarray(y, dtype=np.float32).reshape(len(X), -1)
        ds = Dataset(X=X, y=y, task=task, n_classes=None, name=name,
                     feature_names=FEATURE_NAMES[name])
    return _subsample(ds, n_samples)


def _subsample(ds: Dataset, n_samples: int | None) -> Dataset:
    """Keep a seeded (seed 0) random subset of ``n_samples`` rows, if fewer than ``n``."""
    if n_samples is None or n_samples >= ds.n_samples:
        return ds
    idx = np.sort(np.random.default_rng(0).choice(ds.n_samples, n_samples, replace=False))
    X, y = ds.X[idx], ds.y[idx]
    if ds.task == "classification" and len(np.unique(y)) < 2:
        raise DataError(f"{ds.name}: n_samples={n_samples} keeps only one class")
    return Dataset(X=X, y=y, task=ds.task, n_classes=ds.n_classes, name=ds.name,
                   feature_names=ds.feature_names)
