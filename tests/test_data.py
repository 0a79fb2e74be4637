"""Tests of jaxmlp.data: built-in sets, user files, validation and splits."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmlp.config import DataConfig
from jaxmlp.data import (DATASETS, ConstantFeatureWarning, Dataset, Splits, car_sensor_targets,
                         load_csv, load_dataset, load_npz, load_splits, make_car_sensor,
                         make_logic, make_spirals, make_splits, make_teacher, make_x2, save_npz,
                         validate_arrays)
from jaxmlp.errors import ConfigError, DataError

EXPECTED = {  # name: (n, d, task, n_classes or k)
    "digits": (1797, 64, "classification", 10),
    "iris": (150, 4, "classification", 3),
    "wine": (178, 13, "classification", 3),
    "breast_cancer": (569, 30, "classification", 2),
    "diabetes": (442, 10, "regression", 1),
    "xor": (4, 2, "classification", 2),
    "and": (4, 2, "classification", 2),
    "or": (4, 2, "classification", 2),
    "x2": (512, 1, "regression", 1),
    "square": (512, 1, "regression", 1),
    "spirals": (1000, 2, "classification", 2),
    "car_sensor": (4000, 8, "regression", 2),
    "teacher": (10000, 64, "classification", 10),
}


def write(path, text: str):
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------ built-in data sets

def test_registry_covers_expected_names():
    assert set(DATASETS) == set(EXPECTED)


def test_catalog_names_are_the_table_without_aliases():
    from jaxmlp.data.catalog import ALIASES, NAMES
    assert set(NAMES) | set(ALIASES) == set(DATASETS) and not set(NAMES) & set(ALIASES)
    assert list(NAMES) == [n for n in DATASETS if n in NAMES]  # table order
    for alias, name in ALIASES.items():
        assert DATASETS[alias] is DATASETS[name]


def test_names_import_without_numpy_and_data_loads_without_jax():
    code = ("import sys; from jaxmlp.data.catalog import NAMES; print('numpy' in sys.modules); "
            "import jaxmlp.data; from jaxmlp.config import DataConfig; "
            "s = jaxmlp.data.load_splits(DataConfig(dataset='xor')); "
            "print(s.n_train, 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "4", "False"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_registry_name_loads(name):
    n, d, task, outs = EXPECTED[name]
    ds = load_dataset(DataConfig(dataset=name))
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (n, d) and ds.X.dtype == np.float32
    assert ds.task == task and ds.n_features == d and ds.n_outputs == outs
    assert np.all(np.isfinite(ds.X))
    if task == "classification":
        assert ds.y.shape == (n,) and ds.y.dtype == np.int32
        assert ds.n_classes == outs
        assert ds.y.min() == 0 and ds.y.max() == outs - 1
    else:
        assert ds.y.shape == (n, outs) and ds.y.dtype == np.float32
        assert ds.n_classes is None
    # every built-in passes the public validator unchanged
    X, y = validate_arrays(ds.X, ds.y, ds.task, ds.n_classes, warn_constant=False)
    np.testing.assert_array_equal(X, ds.X)
    np.testing.assert_array_equal(y, ds.y)


def test_digits_values():
    ds = load_dataset(DataConfig())
    assert ds.name == "digits"
    assert ds.X.min() == 0 and ds.X.max() == 16  # pixel intensities
    np.testing.assert_array_equal(np.bincount(ds.y), np.bincount(ds.y, minlength=10))
    assert np.bincount(ds.y).min() >= 170


def test_n_samples_and_noise_overrides():
    assert load_dataset(DataConfig(dataset="spirals", n_samples=50)).X.shape == (50, 2)
    assert load_dataset(DataConfig(dataset="car_sensor", n_samples=30)).y.shape == (30, 2)
    sub = load_dataset(DataConfig(dataset="iris", n_samples=60))
    assert sub.X.shape == (60, 4) and sub.n_classes == 3
    noisy = load_dataset(DataConfig(dataset="x2", noise=0.1))
    clean = load_dataset(DataConfig(dataset="x2"))
    assert not np.array_equal(noisy.y, clean.y)
    np.testing.assert_allclose(clean.y[:, 0], clean.X[:, 0] ** 2, rtol=1e-6)


@pytest.mark.parametrize("name,labels", [("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]),
                                         ("or", [0, 1, 1, 1])])
def test_logic_points(name, labels):
    ds = make_logic(name)
    np.testing.assert_array_equal(ds.X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.n_classes == 2 and ds.task == "classification"
    np.testing.assert_array_equal(ds.y, load_dataset(DataConfig(dataset=name.upper())).y)


def test_x2_values():
    ds = make_x2(101)
    np.testing.assert_allclose(ds.X[[0, 50, 100], 0], [-1, 0, 1], atol=1e-7)
    np.testing.assert_allclose(ds.y[:, 0], ds.X[:, 0].astype(np.float64) ** 2, rtol=1e-6)
    noisy = make_x2(2000, noise=0.1, seed=3)
    resid = noisy.y[:, 0] - noisy.X[:, 0] ** 2
    assert abs(resid.std() - 0.1) < 0.01
    np.testing.assert_array_equal(noisy.y, make_x2(2000, noise=0.1, seed=3).y)


def test_spirals():
    ds = make_spirals(1001, noise=0.0)
    assert np.bincount(ds.y).tolist() == [501, 500]
    r = np.linalg.norm(ds.X, axis=1)
    assert r.max() <= 1.0 + 1e-6 and r.min() >= 0.05 - 1e-6
    # noiseless: each class lies exactly on its spiral, angle = 3*pi*r + c*pi (mod 2*pi)
    ang = np.arctan2(ds.X[:, 1], ds.X[:, 0])
    d = np.angle(np.exp(1j * (ang - 3 * np.pi * r - np.pi * ds.y)))
    assert np.abs(d).max() < 1e-4
    np.testing.assert_array_equal(make_spirals(200, seed=1).X, make_spirals(200, seed=1).X)
    assert not np.array_equal(make_spirals(200, seed=1).X, make_spirals(200, seed=2).X)


def test_car_sensor_is_nonlinear_and_deterministic():
    a, b = make_car_sensor(4000), load_dataset(DataConfig(dataset="car_sensor"))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.X.min() >= 0 and a.X.max() <= 1
    # noise floor: targets minus the noiseless controller have std 0.05
    resid = a.y - car_sensor_targets(a.X)
    np.testing.assert_allclose(resid.std(axis=0), 0.05, rtol=0.1)
    assert np.all(np.abs(a.y[:, 0] - resid[:, 0]) < 1)  # steering in (-1, 1)
    # a linear least-squares fit leaves far more error than the noise
    A = np.c_[a.X, np.ones(len(a.X))].astype(np.float64)
    coef, *_ = np.linalg.lstsq(A, a.y, rcond=None)
    lin_mse = ((a.y - A @ coef) ** 2).mean(axis=0)
    assert np.all(lin_mse > 5 * 0.05 ** 2), lin_mse
    # ... while the (nonlinear) true controller reaches the noise floor
    true_mse = ((a.y - car_sensor_targets(a.X)) ** 2).mean(axis=0)
    assert np.all(lin_mse > 10 * true_mse), (lin_mse, true_mse)
    assert not np.array_equal(make_car_sensor(100, seed=1).X, make_car_sensor(100, seed=2).X)
    clean = make_car_sensor(100, noise=0.0)
    np.testing.assert_allclose(clean.y, car_sensor_targets(clean.X), atol=1e-6)


def test_teacher():
    a = make_teacher(3000, n_features=32, n_classes=5, hidden=(16,), seed=1)
    b = make_teacher(3000, n_features=32, n_classes=5, hidden=(16,), seed=1)
    assert a.X.shape == (3000, 32) and a.X.dtype == np.float32 and a.y.dtype == np.int32
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    counts = np.bincount(a.y, minlength=5)
    assert counts.min() > 0.6 * 600 and counts.max() < 1.4 * 600, counts
    assert abs(a.X.mean()) < 0.02 and abs(a.X.std() - 1) < 0.02
    # the teacher does not depend on n: a longer sample extends the shorter one's labels
    # (same teacher), and a different seed gives a different problem
    c = make_teacher(3000, n_features=32, n_classes=5, hidden=(16,), seed=2)
    assert not np.array_equal(a.y, c.y)
    big = make_teacher(10000, n_features=784)  # spec default shape, quick
    assert big.X.shape == (10000, 784) and big.n_classes == 10
    assert np.bincount(big.y, minlength=10).min() > 700
    f64 = make_teacher(100, n_features=8, dtype=np.float64)
    assert f64.X.dtype == np.float64
    noisy = make_teacher(3000, n_features=32, n_classes=5, hidden=(16,), seed=1, label_noise=0.5)
    agree = (noisy.y == a.y).mean()
    assert 0.5 < agree < 0.7  # half resampled, a fifth of those land on the same class


def test_teacher_labels_are_a_function_of_x():
    a = make_teacher(500, n_features=16, seed=4)
    b = make_teacher(2000, n_features=16, seed=4)
    # same teacher: a 1-nearest-neighbour lookup cannot tell, so check via exact row matches
    np.testing.assert_array_equal(a.X, b.X[:500])
    np.testing.assert_array_equal(a.y, b.y[:500])


def test_builtin_config_errors():
    with pytest.raises(DataError, match="unknown dataset 'foo'.*digits.*csv/.npz"):
        load_dataset(DataConfig(dataset="foo"))
    with pytest.raises(ConfigError, match="task"):
        load_dataset(DataConfig(dataset="digits", task="regression"))
    with pytest.raises(ConfigError, match="target"):
        load_dataset(DataConfig(dataset="iris", target="y"))
    with pytest.raises(ConfigError):
        make_logic("nand")


# ------------------------------------------------------------------ splits

def test_split_sizes_disjoint_and_cover():
    cfg = DataConfig(dataset="digits", val_fraction=0.1, test_fraction=0.2, split_seed=3,
                     standardize=False)
    ds = load_dataset(cfg)
    s = make_splits(ds, cfg)
    assert isinstance(s, Splits)
    assert (s.n_train, s.n_val, s.n_test) == (1797 - 180 - 359, 180, 359)
    assert s.n_features == 64 and s.n_outputs == 10 and s.n_classes == 10
    rows = [tuple(r) + (int(lbl),) for part in ((s.X_train, s.y_train), (s.X_val, s.y_val),
                                                (s.X_test, s.y_test))
            for r, lbl in zip(*part)]
    all_rows = sorted(tuple(r) + (int(lbl),) for r, lbl in zip(ds.X, ds.y))
    assert sorted(rows) == all_rows  # a partition of the data set (up to duplicate rows)
    # disjoint by index: recover each split row's index (digits has a few duplicate images,
    # so match on sets of row bytes of the unique rows only)
    keys = [r.tobytes() for r in ds.X]
    uniq = {k for k in keys if keys.count(k) == 1}
    parts = [{r.tobytes() for r in X} & uniq for X in (s.X_train, s.X_val, s.X_test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    # stratified: each class's share in test close to its share overall
    np.testing.assert_allclose(np.bincount(s.y_test, minlength=10) / s.n_test,
                               np.bincount(ds.y) / len(ds.y), atol=0.01)
    assert s.y_train.dtype == np.int32 and s.X_train.dtype == np.float32
    assert s.y_mean is None and s.y_std is None
    np.testing.assert_array_equal(s.x_mean, 0)
    np.testing.assert_array_equal(s.x_std, 1)


def test_split_seed_determinism():
    ds = make_spirals(300)
    a = make_splits(ds, DataConfig(dataset="spirals", split_seed=1))
    b = make_splits(ds, DataConfig(dataset="spirals", split_seed=1))
    c = make_splits(ds, DataConfig(dataset="spirals", split_seed=2))
    for f in ("X_train", "y_train", "X_val", "X_test", "x_mean"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.X_train, c.X_train)
    assert not np.array_equal(a.x_mean, c.x_mean)
    neg = make_splits(ds, DataConfig(dataset="spirals", split_seed=-5))
    assert neg.n_train == a.n_train


def test_train_only_standardisation_regression():
    cfg = DataConfig(dataset="car_sensor", split_seed=7)
    ds = load_dataset(cfg)
    s = make_splits(ds, cfg)
    raw = make_splits(ds, cfg.replace(standardize=False))
    np.testing.assert_allclose(s.x_mean, raw.X_train.astype(np.float64).mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.x_std, raw.X_train.astype(np.float64).std(0), rtol=1e-5)
    np.testing.assert_allclose(s.y_mean, raw.y_train.astype(np.float64).mean(0), atol=1e-6)
    np.testing.assert_allclose(s.y_std, raw.y_train.astype(np.float64).std(0), rtol=1e-5)
    # the full data set's mean differs from the train mean: test rows were not used
    assert not np.allclose(s.x_mean, ds.X.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(s.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.X_train.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(s.y_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.y_train.std(0), 1, atol=1e-4)
    # val/test use the same (train) transform, so they are not exactly centred
    np.testing.assert_allclose(s.X_test, (raw.X_test - s.x_mean) / s.x_std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.y_val, (raw.y_val - s.y_mean) / s.y_std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.X_test * s.x_std + s.x_mean, raw.X_test, atol=1e-5)
    assert s.n_outputs == 2 and s.y_train.dtype == np.float32


def test_constant_columns_get_unit_std():
    cfg = DataConfig(dataset="digits")
    s = load_splits(cfg)
    const = np.ptp(load_splits(cfg.replace(standardize=False)).X_train, axis=0) == 0
    assert const.any()  # digits has always-blank pixels
    np.testing.assert_array_equal(s.x_std[const], 1)
    assert np.all(np.isfinite(s.X_train)) and np.all(np.isfinite(s.X_test))


def test_tiny_dataset_uses_all_rows_everywhere():
    from jaxmlp.data.splits import UnsplitDataWarning
    with pytest.warns(UnsplitDataWarning):
        s = load_splits(DataConfig(dataset="xor"))
    for X, y in ((s.X_train, s.y_train), (s.X_val, s.y_val), (s.X_test, s.y_test)):
        np.testing.assert_array_equal(y, [0, 1, 1, 0])
        np.testing.assert_allclose(X, (make_logic("xor").X - 0.5) / 0.5)
    s0 = load_splits(DataConfig(dataset="and", val_fraction=0.0, test_fraction=0.0))
    assert (s0.n_train, s0.n_val, s0.n_test) == (4, 0, 0)
    assert s0.X_val.shape == (0, 2) and s0.y_val.shape == (0,)


def test_zero_fractions_and_train_nonempty():
    ds = make_x2(100)
    s = make_splits(ds, DataConfig(dataset="x2", val_fraction=0.0, test_fraction=0.0))
    assert (s.n_train, s.n_val, s.n_test) == (100, 0, 0)
    assert s.X_val.shape == (0, 1) and s.y_test.shape == (0, 1)
    s = make_splits(make_x2(20), DataConfig(dataset="x2", val_fraction=0.49, test_fraction=0.49))
    assert s.n_train >= 1 and s.n_train + s.n_val + s.n_test == 20


def test_unstratifiable_classes_fall_back():
    X = np.arange(60, dtype=np.float32)[:, None]
    y = np.array([0] * 50 + [1] * 9 + [2], dtype=np.int32)  # class 2 has one member
    ds = Dataset(X=X, y=y, task="classification", n_classes=3, name="skew")
    s = make_splits(ds, DataConfig(dataset="skew.npz"))
    assert s.n_train + s.n_val + s.n_test == 60
    assert len(np.unique(s.y_train)) >= 2


# ------------------------------------------------------------------ CSV files

def test_csv_round_trip_and_label_mapping(tmp_path):
    p = write(tmp_path / "toy.csv", "a,b,label\n1,2,10\n3,4.5,20\n-1,0,10\n5,6,30\n")
    ds = load_csv(p)
    assert ds.name == "toy" and ds.task == "classification" and ds.n_classes == 3
    assert ds.feature_names == ("a", "b")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4.5], [-1, 0], [5, 6]])
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 2])  # 10 -> 0, 20 -> 1, 30 -> 2
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int32


def test_csv_target_selection_and_regression(tmp_path):
    p = write(tmp_path / "r.csv", " price , x1, x2\n1.5,0,1\n2.25,1,0\n3.0,1,1\n\n")
    ds = load_csv(p, target="price")
    assert ds.task == "regression" and ds.y.shape == (3, 1)
    np.testing.assert_allclose(ds.y[:, 0], [1.5, 2.25, 3.0])
    np.testing.assert_array_equal(ds.X, [[0, 1], [1, 0], [1, 1]])
    assert ds.feature_names == ("x1", "x2")
    # through the config, with a forced task
    ds2 = load_dataset(DataConfig(dataset=p, target="x2", task="regression"))
    assert ds2.task == "regression" and ds2.feature_names == ("price", "x1")
    # integer targets with many distinct values are regression under auto
    rows = "\n".join(f"{i},{i * 3}" for i in range(30))
    ds3 = load_csv(write(tmp_path / "many.csv", "x,y\n" + rows + "\n"))
    assert ds3.task == "regression"
    ds4 = load_csv(str(tmp_path / "many.csv"), task="classification")
    assert ds4.n_classes == 30


def test_csv_with_windows_newlines_and_bom(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes(b"\xef\xbb\xbfx,y\r\n0,0\r\n1,1\r\n")
    ds = load_csv(p)
    assert ds.feature_names == ("x",) and ds.y.tolist() == [0, 1]


@pytest.mark.parametrize("text,words", [
    ("", "empty"),
    ("\n\n", "empty"),
    ("a,b,y\n", "no data rows"),
    ("a,b,y\n1,2,0\n3,4\n", "line 3"),
    ("a,b,y\n1,2,0\n3,4,1,5\n", "line 3"),
    ("a,b,y\n1,2,0\n3,oops,1\n", "non-numeric.*'oops'.*row 2.*column 'b'"),
    ("a,b,y\n1,,0\n3,4,1\n", "non-numeric.*row 1.*column 'b'"),
    ("a,b,y\n1,nan,0\n3,4,1\n", "1 non-finite.*data row 1 \\(line 2\\), column 'b'"),
    ("a,b,y\n1,inf,0\n3,-inf,1\n", "2 non-finite"),
    ("a,b,y\n1,2,0\n3,4,1e999\n", "1 non-finite.*data row 2.*column 'y'"),
    ("a,b,y\n1,2,0\n3,4,0\n", "one-class"),
    ("y\n1\n2\n", "at least 2 columns"),
    ("1,2,3\n4,5,6\n", "header"),
    ("a,a,y\n1,2,0\n", "duplicate"),
])
def test_csv_errors(tmp_path, text, words):
    p = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=words):
        load_csv(p)


def test_csv_unknown_target_lists_columns(tmp_path):
    p = write(tmp_path / "t.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"'label' not found.*a, b, y"):
        load_csv(p, target="label")
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(dataset=p, target="label"))


def test_csv_classification_needs_integers(tmp_path):
    p = write(tmp_path / "f.csv", "a,y\n1,0.5\n2,1\n")
    assert load_csv(p).task == "regression"
    with pytest.raises(DataError, match="integers"):
        load_csv(p, task="classification")


def test_csv_constant_column_warns(tmp_path):
    p = write(tmp_path / "c.csv", "a,k,y\n1,7,0\n2,7,1\n3,7,0\n")
    with pytest.warns(ConstantFeatureWarning, match="constant"):
        ds = load_csv(p)
    assert ds.X[:, 1].tolist() == [7, 7, 7]


def test_csv_not_utf8(tmp_path):
    p = tmp_path / "b.csv"
    p.write_bytes(b"a,y\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="UTF-8"):
        load_csv(p)


def test_missing_paths(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(dataset=str(tmp_path / "nope.npz")))
    d = tmp_path / "dir.csv"
    d.mkdir()
    with pytest.raises(DataError, match="directory"):
        load_dataset(DataConfig(dataset=str(d)))
    txt = write(tmp_path / "data.txt", "a,y\n1,0\n")
    with pytest.raises(DataError, match="unknown dataset.*csv/.npz"):
        load_dataset(DataConfig(dataset=txt))


# ------------------------------------------------------------------ NPZ files

def test_npz_round_trip(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    p = tmp_path / "cls.npz"
    save_npz(p, X, np.array([0, 1, 2, 0, 1, 2]))
    ds = load_npz(p)
    assert ds.task == "classification" and ds.n_classes == 3 and ds.name == "cls"
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    assert ds.y.dtype == np.int32 and ds.y.tolist() == [0, 1, 2, 0, 1, 2]
    # n_classes = max + 1 even when a class is absent
    save_npz(p, X, np.array([0, 3, 0, 3, 0, 3], dtype=np.int64))
    assert load_npz(p).n_classes == 4
    # float 1-D y -> regression (n, 1); 2-D -> (n, k)
    save_npz(tmp_path / "r.npz", X, np.linspace(0, 1, 6))
    r = load_dataset(DataConfig(dataset=str(tmp_path / "r.npz")))
    assert r.task == "regression" and r.y.shape == (6, 1) and r.y.dtype == np.float32
    save_npz(tmp_path / "r2.npz", X, np.ones((6, 3)) * np.arange(6)[:, None])
    assert load_npz(tmp_path / "r2.npz").n_outputs == 3
    # integral floats may be forced to classification; non-integral may not
    save_npz(tmp_path / "fi.npz", X, np.array([0., 1., 1., 0., 1., 0.]))
    assert load_npz(tmp_path / "fi.npz").task == "regression"
    fc = load_npz(tmp_path / "fi.npz", task="classification")
    assert fc.y.dtype == np.int32 and fc.n_classes == 2
    with pytest.raises(DataError, match="integers"):
        load_npz(tmp_path / "r.npz", task="classification")
    # integer labels forced to regression
    assert load_npz(p, task="regression").y.shape == (6, 1)


def test_npz_errors(tmp_path):
    X = np.zeros((4, 2)) + np.arange(4)[:, None]
    p = tmp_path / "a.npz"
    np.savez(p, X=X)
    with pytest.raises(DataError, match="missing.*'y'"):
        load_npz(p)
    save_npz(p, X, np.array([0, -1, 1, 0]))
    with pytest.raises(DataError, match="labels out of range"):
        load_npz(p)
    save_npz(p, X, np.array([0, 1, 1]))
    with pytest.raises(DataError, match="rows"):
        load_npz(p)
    save_npz(p, X, np.array([1, 1, 1, 1]))
    with pytest.raises(DataError, match="one-class"):
        load_npz(p)
    save_npz(p, X.ravel(), np.array([0, 1] * 4))
    with pytest.raises(DataError, match="2-D"):
        load_npz(p)
    # object arrays need pickle, which is refused
    np.savez(p, X=np.array([[1, 2]], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="cannot read"):
        load_npz(p)
    # truncated archive
    save_npz(p, X, np.array([0, 1, 1, 0]))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_npz(p)
    # not a zip at all / a bare .npy
    p.write_bytes(b"hello world")
    with pytest.raises(DataError):
        load_npz(p)
    buf = io.BytesIO()
    np.save(buf, X)
    p.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="not an .npz"):
        load_npz(p)
    # corrupted member inside a valid zip
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("X.npy", b"\x93NUMPY garbage")
        z.writestr("y.npy", b"junk")
    with pytest.raises(DataError):
        load_npz(p)
    p.write_bytes(b"")
    with pytest.raises(DataError):
        load_npz(p)


# ------------------------------------------------------------------ validate_arrays

def test_validate_converts_dtypes():
    X, y = validate_arrays([[1, 2], [3, 4]], [1, 0], "classification")
    assert X.dtype == np.float32 and y.dtype == np.int32 and y.tolist() == [1, 0]
    X, y = validate_arrays(np.ones((3, 2), np.float64) * [[1], [2], [3]], [0.5, 1, 2],
                           "regression")
    assert y.shape == (3, 1) and y.dtype == np.float32
    _, y = validate_arrays([[1.0], [2.0]], np.array([[0], [1]]), "classification", n_classes=5)
    assert y.shape == (2,)


@pytest.mark.parametrize("X,y,task,kw,words", [
    (np.zeros((0, 3)), np.zeros(0), "regression", {}, "empty"),
    (np.zeros(3), np.zeros(3), "regression", {}, "2-D"),
    (np.zeros((3, 0)), np.zeros(3), "regression", {}, "no feature"),
    ([[0.0], [np.nan], [np.inf]], [0, 1, 0], "classification", {}, "2 non-finite.*row 1"),
    ([[0.0], [1e39]], [0, 1], "classification", {}, "non-finite"),
    ([[0.0], [1.0]], [0.0, np.nan], "regression", {}, "y has 1 non-finite"),
    ([[0.0], [1.0]], [0, 1, 1], "classification", {}, "lengths must match"),
    ([[0.0], [1.0]], [0, 3], "classification", {"n_classes": 3}, "labels out of range"),
    ([[0.0], [1.0]], [-1, 1], "classification", {}, "labels out of range"),
    ([[0.0], [1.0]], [0.5, 1], "classification", {}, "integers"),
    ([[0.0], [1.0]], [1, 1], "classification", {}, "one-class"),
    ([["a"], ["b"]], [0, 1], "classification", {}, "numeric"),
    ([[0.0], [1.0]], np.array([[0, 1], [1, 0]]), "classification", {}, "1-D"),
])
def test_validate_errors(X, y, task, kw, words):
    with pytest.raises(DataError, match=words):
        validate_arrays(X, y, task, **kw)


def test_finite_check_finds_every_non_finite_value_and_passes_float64_sums_that_overflow():
    # the fast path sums in float64: finite float64 labels whose sum overflows are finite
    # (and then out of range), not "non-finite"
    with pytest.raises(DataError, match="labels out of range: found 1e\\+308"):
        validate_arrays([[0.0], [1.0]], np.array([1e308, 1e308]), "classification")
    big = np.full((3, 2), 3e38, np.float32)  # float32's sum would overflow, float64's does not
    X, _ = validate_arrays(big, [0, 1, 0], "classification", warn_constant=False)
    assert np.array_equal(X, big)
    bad = big.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="1 non-finite.*row 2, column 1"):
        validate_arrays(bad, [0, 1, 0], "classification")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 40), d=st.integers(1, 4), scale=st.sampled_from([1e-3, 1.0, 1e5]),
       offset=st.sampled_from([0.0, 1e4, -3e7]), seed=st.integers(0, 2**16))
def test_blockwise_statistics_equal_one_float64_pass(n, d, scale, offset, seed, monkeypatch):
    """``_stats`` sums in blocks of rows (here 7) and must give the float32 mean/std of one
    float64 pass over the whole array (to float32 round-off), with std 1 for constant
    columns."""
    from jaxmlp.data import splits
    monkeypatch.setattr(splits, "STATS_BLOCK_ROWS", 7)
    a = (np.random.default_rng(seed).standard_normal((n, d)) * scale + offset).astype(np.float32)
    a[:, 0] = np.float32(offset + 0.5)  # a constant column
    mean, std = splits._stats(a)
    a64 = a.astype(np.float64)
    ref_std = a64.std(axis=0)
    ref_std[(np.ptp(a, axis=0) == 0) | ~(ref_std > 0)] = 1.0
    np.testing.assert_allclose(mean, a64.mean(axis=0).astype(np.float32), rtol=1e-6, atol=0)
    np.testing.assert_allclose(std, ref_std.astype(np.float32), rtol=1e-5)
    assert std[0] == 1.0 and mean.dtype == std.dtype == np.float32


def test_validate_constant_column_warning_and_bad_task():
    with pytest.warns(ConstantFeatureWarning, match="1 constant feature column"):
        validate_arrays([[1.0, 5.0], [2.0, 5.0]], [0, 1], "classification")
    with pytest.raises(ConfigError):
        validate_arrays([[1.0]], [0.0], "ranking")


# ------------------------------------------------------------------ fuzzing

FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
CSV_TEXT = st.text(alphabet="0123456789,.-+e\n\r \"abnix", max_size=120)


def _load_or_data_error(path, loader):
    try:
        ds = loader(path)
    except DataError:
        return
    X, y = validate_arrays(ds.X, ds.y, ds.task, ds.n_classes, warn_constant=False)
    assert X.shape[0] == y.shape[0] >= 1


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_csv_bytes(tmp_path, blob):
    p = tmp_path / "fuzz.csv"
    p.write_bytes(blob)
    with _nowarn():
        _load_or_data_error(p, load_csv)


@FUZZ
@given(CSV_TEXT)
def test_fuzz_csv_text(tmp_path, text):
    p = tmp_path / "fuzz.csv"
    p.write_text("a,b,y\n" + text)
    with _nowarn():
        _load_or_data_error(p, load_csv)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_npz_bytes(tmp_path, blob):
    p = tmp_path / "fuzz.npz"
    p.write_bytes(blob)
    _load_or_data_error(p, load_npz)


@FUZZ
@given(st.integers(0, 10 ** 6), st.binary(max_size=20))
def test_fuzz_npz_truncated_or_patched(tmp_path, where, patch):
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.arange(20.0).reshape(10, 2), y=np.arange(10) % 2)
    good = buf.getvalue()
    i = where % (len(good) + 1)
    p = tmp_path / "fuzz.npz"
    p.write_bytes(good[:i] + patch + good[i + len(patch):] if patch else good[:i])
    _load_or_data_error(p, load_npz)


class _nowarn:
    """Silence warnings (e.g. constant columns) during fuzzing."""

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
