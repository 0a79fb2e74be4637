"""The bundled data sets and the index splits, read and drawn without scikit-learn, against
scikit-learn itself (installed as a dependency, imported here only)."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxmlp.data.bundled import FEATURE_NAMES, load_bundled
from jaxmlp.data.shuffle_split import split_indices

NAMES = ["digits", "iris", "wine", "breast_cancer", "diabetes"]


@pytest.mark.parametrize("name", NAMES)
def test_bundled_sets_equal_sklearn_loaders(name):
    from sklearn import datasets
    bunch = getattr(datasets, f"load_{name}")()
    X, y = load_bundled(name)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)
    assert FEATURE_NAMES[name] == tuple(str(f) for f in bunch.feature_names)


def _sk_split(idx, size, labels, seed):
    from sklearn.model_selection import train_test_split
    return train_test_split(idx, test_size=size, random_state=seed, shuffle=True, stratify=labels)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(4, 120), k=st.integers(1, 6), frac=st.floats(0.05, 0.9),
       seed=st.integers(0, 2**31 - 1), stratify=st.booleans(), data=st.data())
def test_split_indices_equal_train_test_split(n, k, frac, seed, stratify, data):
    labels = np.asarray(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    idx = np.arange(100, 100 + n)
    size = min(max(1, round(n * frac)), n - 1)
    lab = labels if stratify else None
    try:
        want = _sk_split(idx, size, lab, seed)
    except ValueError:
        with pytest.raises(ValueError):
            split_indices(idx, size, lab, seed)
        return
    got = split_indices(idx, size, lab, seed)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_default_data_loads_without_importing_sklearn():
    code = ("import sys, jaxmlp; s = jaxmlp.load_splits(jaxmlp.DataConfig());"
            "print(len(s.X_train), len(s.X_val), len(s.X_test), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1258", "180", "359", "False"]
