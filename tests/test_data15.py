"""Issue 15, the data side: class values kept through a run folder and ``jaxmlp predict``;
splits that cannot be made are refused; tiny sets are split or say they are not; generated
arrays validated like files; NPZ ``(n, 1)`` integer labels; strict CSV numbers; early stopping
without a validation split says what it watches."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from helpers import run_main
from jaxmlp.cli import main
from jaxmlp.config import DataConfig, TrainConfig
from jaxmlp.data import Dataset, load_csv, load_dataset, load_npz, load_splits, make_splits
from jaxmlp.errors import DataError


def write_csv(path, X, labels):
    lines = ["a,b,label"] + [f"{x[0]!r},{x[1]!r},{lab}" for x, lab in zip(X.tolist(), labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def three_class_data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    cls = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, np.array([10, 20, 30])[cls]


# ------------------------------------------------------------------ 1. class values kept

@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A run trained on a CSV whose labels are 10, 20, 30."""
    d = tmp_path_factory.mktemp("d15")
    X, lab = three_class_data()
    train = write_csv(d / "train.csv", X, lab)
    out = d / "run"
    rc = main(["train", "--dataset", str(train), "--hidden", "8", "--epochs", "40", "--lr", "0.2",
               "--quiet", "--out", str(out)])
    assert rc == 0
    return d, out, X, lab


def _expected_accuracy(run, X, lab):
    """Accuracy of the run's params on raw rows, the predicted class id read as a TRAINING
    class value."""
    from jaxmlp.nn import forward
    from jaxmlp.runs.predict import params_from_run
    cfg, params, norm = params_from_run(run)
    Xn = (X.astype(np.float32) - np.float32(norm["x_mean"])) / np.float32(norm["x_std"])
    ids = np.asarray(forward(params, Xn, activation=cfg.model.activation)).argmax(1)
    return float(np.mean(np.asarray(norm["classes"])[ids] == lab))


def test_csv_classes_are_kept_and_stored(csv_run):
    from jaxmlp.runs.predict import params_from_run
    d, out, X, lab = csv_run
    assert load_csv(d / "train.csv").classes == (10, 20, 30)
    assert load_splits(DataConfig(dataset=str(d / "train.csv"))).classes == (10, 20, 30)
    assert params_from_run(out)[2]["classes"] == [10, 20, 30]


def test_predict_subset_of_classes_maps_through_training_classes(csv_run, capsys):
    import json
    d, out, X, lab = csv_run
    keep = lab != 10
    sub = write_csv(d / "sub.csv", X[keep], lab[keep])
    rc, stdout, err = run_main(["predict", "--run", out, "--dataset", sub], capsys)
    assert rc == 0, err
    res = json.loads(stdout)
    assert res["n"] == int(keep.sum())
    expected = _expected_accuracy(out, X[keep], lab[keep])
    assert expected > 0.6  # the model learned something, so a re-coding would show
    assert res["accuracy"] == pytest.approx(expected, abs=1e-6)
    # a file holding one class only can be scored too
    only30 = write_csv(d / "only30.csv", X[lab == 30], lab[lab == 30])
    rc, stdout, err = run_main(["predict", "--run", out, "--dataset", only30], capsys)
    assert rc == 0, err
    assert json.loads(stdout)["accuracy"] == pytest.approx(
        _expected_accuracy(out, X[lab == 30], lab[lab == 30]), abs=1e-6)


def test_predict_unseen_label_is_an_error_naming_it(csv_run, capsys):
    d, out, X, lab = csv_run
    bad = write_csv(d / "bad.csv", X[:4], [20, 40, 30, 20])
    rc, stdout, err = run_main(["predict", "--run", out, "--dataset", bad], capsys)
    assert rc == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "40" in lines[0]
    assert "Error:" not in lines[0]


def test_old_run_folders_without_classes_mean_0_to_k(tmp_path):
    from jaxmlp.runs.predict import run_classes, training_class_ids
    norm = {"task": "classification", "n_classes": 3}  # written before classes were stored
    assert run_classes(norm) == [0, 1, 2]
    ds = Dataset(X=np.zeros((3, 1), np.float32), y=np.array([2, 0, 1], np.int32),
                 task="classification", n_classes=3, name="t")
    np.testing.assert_array_equal(training_class_ids(ds, norm), [2, 0, 1])
    with pytest.raises(DataError, match="label.* 3 "):
        training_class_ids(Dataset(X=np.zeros((2, 1), np.float32), y=np.array([0, 3], np.int32),
                                   task="classification", n_classes=4, name="t"), norm)


# ------------------------------------------------------------------ 2. too few rows

def test_one_row_spirals_is_refused(tmp_path, capsys):
    rc, stdout, err = run_main(["train", "--dataset", "spirals", "--n-samples", "1", "--epochs",
                                "1", "--out", tmp_path / "r"], capsys)
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_requested_split_that_would_be_empty_is_refused():
    X = np.arange(25, dtype=np.float32)[:, None]
    ds = Dataset(X=X, y=X.copy(), task="regression", n_classes=None, name="small")
    with pytest.raises(DataError, match="validation split would be empty"):
        make_splits(ds, DataConfig(dataset="small.npz", val_fraction=0.01))
    s = make_splits(ds, DataConfig(dataset="small.npz", val_fraction=0.0))
    assert (s.n_train, s.n_val, s.n_test) == (20, 0, 5)


def test_one_class_training_split_is_refused():
    X = np.arange(60, dtype=np.float32)[:, None]
    y = np.array([0] * 58 + [1, 2], dtype=np.int32)  # seed 0 puts both rare rows out of train
    ds = Dataset(X=X, y=y, task="classification", n_classes=3, name="skew")
    with pytest.raises(DataError, match="only one class"):
        make_splits(ds, DataConfig(dataset="skew.npz"))


# ------------------------------------------------------------------ 3. tiny sets

def test_subsampled_builtin_is_split_not_reused():
    s = load_splits(DataConfig(dataset="iris", n_samples=19, standardize=False))
    assert s.n_train + s.n_val + s.n_test == 19 and s.n_test >= 1 and s.n_val >= 1
    train_rows = {r.tobytes() for r in s.X_train}
    assert not any(r.tobytes() in train_rows for r in s.X_test)


def test_subsampled_builtin_too_small_to_split_is_refused(tmp_path, capsys):
    rc, _, err = run_main(["train", "--dataset", "spirals", "--n-samples", "5", "--epochs", "1",
                           "--out", tmp_path / "r"], capsys)
    assert rc == 2 and err.startswith("error:") and "too few" in err


def test_unsplit_tiny_sets_say_so():
    from jaxmlp.data.splits import UnsplitDataWarning
    with pytest.warns(UnsplitDataWarning, match="training rows"):
        s = load_splits(DataConfig(dataset="xor"))
    assert s.n_train == s.n_test == 4
    X = np.arange(10, dtype=np.float32)[:, None]
    user = Dataset(X=X, y=X.copy(), task="regression", n_classes=None, name="mine")
    with pytest.warns(UnsplitDataWarning):
        make_splits(user, DataConfig(dataset="mine.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: no val/test asked for
        make_splits(user, DataConfig(dataset="mine.npz", val_fraction=0, test_fraction=0))


def test_cli_prints_the_unsplit_warning_as_one_line(tmp_path, capsys):
    rc, _, err = run_main(["train", "--dataset", "xor", "--epochs", "1", "--quiet",
                           "--out", tmp_path / "r"], capsys)
    assert rc == 0
    hits = [ln for ln in err.splitlines() if "not split" in ln]
    assert len(hits) == 1 and hits[0].startswith("warning:")


# ------------------------------------------------------------------ 4. generated data validated

@pytest.mark.parametrize("name", ["x2", "spirals", "car_sensor"])
def test_generated_non_finite_data_is_a_data_error(name):
    with pytest.raises(DataError, match="non-finite"):
        load_dataset(DataConfig(dataset=name, noise=1e39))


def test_cli_huge_noise_exits_2_naming_the_problem(tmp_path, capsys):
    rc, _, err = run_main(["train", "--dataset", "x2", "--noise", "1e39", "--epochs", "1",
                           "--out", tmp_path / "r"], capsys)
    assert rc == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: x2:")
    assert "non-finite" in err and "diverged" not in err


# ------------------------------------------------------------------ 5. NPZ (n, 1) labels

@pytest.mark.parametrize("shape", [(-1,), (-1, 1)])
def test_npz_integer_labels_are_classes_whatever_the_shape(tmp_path, shape):
    X = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    y = (np.arange(30) % 3).astype(np.int64).reshape(shape)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_npz(tmp_path / "d.npz")
    assert ds.task == "classification" and ds.n_classes == 3 and ds.y.shape == (30,)
    np.testing.assert_array_equal(ds.y, np.arange(30) % 3)
    reg = load_npz(tmp_path / "d.npz", task="regression")
    assert reg.task == "regression" and reg.y.shape == (30, 1)


def test_npz_integer_multi_column_targets_stay_regression(tmp_path):
    np.savez(tmp_path / "m.npz", X=np.zeros((6, 1)) + np.arange(6)[:, None],
             y=np.arange(12).reshape(6, 2))
    assert load_npz(tmp_path / "m.npz").task == "regression"


# ------------------------------------------------------------------ 6. CSV numbers

@pytest.mark.parametrize("cell", ["1_000", "1__0", "\u0661\u0662"])
def test_csv_cell_python_float_accepts_is_rejected(tmp_path, cell):
    p = tmp_path / "u.csv"
    p.write_text(f"a,b,label\n1,2,0\n3,{cell},1\n5,6,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"non-numeric value .* data row 2 .*column 'b'"):
        load_csv(p)


def test_csv_ordinary_numbers_still_parse(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text("a,b,label\n 1.5 ,-2e3,0\n.5,+7.,1\n1E-2,3,1\n")
    np.testing.assert_array_equal(load_csv(p).X, np.float32([[1.5, -2000], [0.5, 7], [0.01, 3]]))


# ------------------------------------------------------------------ 7. patience without val

def test_patience_without_validation_warns_from_the_library():
    from jaxmlp.training import fit
    from jaxmlp.training.spec import PatienceWithoutValidationWarning
    s = load_splits(DataConfig(dataset="spirals", n_samples=200, val_fraction=0.0))
    with pytest.warns(PatienceWithoutValidationWarning, match="training loss"):
        fit(s, train=TrainConfig(epochs=2, patience=3))
    s = load_splits(DataConfig(dataset="spirals", n_samples=200))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PatienceWithoutValidationWarning)
        fit(s, train=TrainConfig(epochs=2, patience=3))
