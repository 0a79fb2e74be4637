"""Reading a finished run folder back: its trained params and the normalizer of its data, and
scoring a data set with them (``jaxmlp predict``).

Class labels are matched by value: the run folder stores its training data's class values
(``normalizer["classes"]``, class id ``i`` is value ``classes[i]``; folders written before
that hold ``0..n_classes-1``), and a scored file's labels are mapped through them, so a file
holding only some of the classes (or in another order) is scored against the right outputs,
and a label the model never saw is a ``DataError`` naming it."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxmlp.config import DataConfig
from jaxmlp.data import load_csv, load_dataset, load_npz
from jaxmlp.errors import DataError
from jaxmlp.runs import checkpoint as ckpt
from jaxmlp.runs.folder import load_run_config


def load_run(run_dir):
    """``(cfg, leaves, normalizer)`` of a run folder's checkpoint: the saved state's arrays as
    ``jaxmlp.runs.checkpoint.read_checkpoint`` returns them."""
    cfg = load_run_config(run_dir)
    leaves, meta = ckpt.load_checkpoint(Path(run_dir) / ckpt.CHECKPOINT_NAME)
    norm = meta["extra"].get("normalizer", {})
    return cfg, leaves, norm


def params_from_run(run_dir):
    """``(cfg, params, normalizer)``: the trained params of a run folder (the best params under
    early stopping), rebuilt in the structure of its config."""
    from jaxmlp.nn import init_mlp
    from jaxmlp.training import best_params, init_key, init_state, make_spec, model_sizes
    cfg, leaves, norm = load_run(run_dir)
    n_features = len(norm["x_mean"])
    task = norm["task"]
    n_out = norm["n_classes"] if task == "classification" else len(norm.get("y_mean", [0]))
    spec = make_spec(cfg.model, cfg.train, task=task, n_train=max(cfg.train.batch_size, 1),
                     has_val=True, has_test=True)
    params = init_mlp(init_key(cfg.train.seed), model_sizes(cfg.model, n_features, n_out),
                      init=cfg.model.init, activation=cfg.model.activation)
    state = ckpt.restore_state(init_state(spec, params, momentum=cfg.train.momentum), leaves)
    return cfg, jax.device_get(best_params(spec, state)), norm


def _normalized(ds, norm: dict):
    """A data set's ``(X, y)`` in the units the model was trained in (its training split's
    mean/std), checked against the model's feature and class counts."""
    if ds.X.shape[1] != len(norm["x_mean"]):
        raise DataError(f"data has {ds.X.shape[1]} features, the model expects {len(norm['x_mean'])}")
    X = (ds.X - np.asarray(norm["x_mean"], np.float32)) / np.asarray(norm["x_std"], np.float32)
    y = ds.y
    if norm["task"] == "regression":
        y = (y - np.asarray(norm["y_mean"], np.float32)) / np.asarray(norm["y_std"], np.float32)
    else:
        y = training_class_ids(ds, norm)
    return X, y


def run_classes(norm: dict) -> list:
    """The training data's class values of a run's normalizer (class id ``i`` is value
    ``[i]``); ``0..n_classes-1`` for folders written before the values were stored."""
    if norm.get("classes") is not None:
        return list(norm["classes"])
    return list(range(int(norm["n_classes"])))


def training_class_ids(ds, norm: dict) -> np.ndarray:
    """A classification data set's labels as the TRAINING data's class ids: each row's
    original label value (``ds.class_values``) looked up in :func:`run_classes`.

    Raises:
        DataError: a label value that was not a class of the training data.
    """
    values = np.asarray(ds.class_values, dtype=np.float64)[ds.y]
    known = {float(v): i for i, v in enumerate(run_classes(norm))}
    present = np.unique(values)
    unseen = [v for v in present.tolist() if v not in known]
    if unseen:
        shown = ", ".join(f"{v:g}" for v in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        classes = run_classes(norm)
        listed = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
        raise DataError(f"{ds.name}: label(s) {shown} out of range: not among the model's "
                        f"training classes ({listed})")
    lut = np.array([known[v] for v in present.tolist()], dtype=np.int32)
    return lut[np.searchsorted(present, values)]


def _load_scored(name: str, target, task: str):
    """The data set to score: as ``load_dataset``, but a user file may hold a single class."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return load_csv(name, target=target, task=task, min_classes=1)
    if suffix == ".npz" and target is None:
        return load_npz(name, task=task, min_classes=1)
    return load_dataset(DataConfig(dataset=name, target=target, task=task))


def score_run(run_dir, dataset: str | None = None, target: str | None = None) -> dict:
    """Score a data set (default: the run's own, all of it) with a run folder's trained params:
    ``{"loss", "accuracy" | "mse", "n"}`` as plain numbers."""
    from jaxmlp.registry import resolve_loss
    from jaxmlp.training import evaluate
    cfg, params, norm = params_from_run(run_dir)
    ds = _load_scored(dataset or cfg.data.dataset, target or cfg.data.target, norm["task"])
    X, y = _normalized(ds, norm)
    loss = resolve_loss(cfg.train.loss, norm["task"])  # the loss it was trained with
    res = evaluate({"activation": cfg.model.activation, "loss": loss,
                    "temperature": cfg.train.temperature}, params, X, y)
    return {**{k: float(v) for k, v in res.items()}, "n": int(len(X))}
