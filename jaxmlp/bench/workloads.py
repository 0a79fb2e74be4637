"""What the in-process benchmark runs: the workloads (W1-W4, G) and the data every framework
gets (training arrays, jaxmlp's initial weights and per-epoch order, written to ``.npz`` files
for the child processes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PEER_NAMES = ("pytorch", "pytorch_1t", "sklearn")
CORES = "jaxmlp_cores"  # W3's second jaxmlp entry: the sweep as the CLI runs it
TORCH_THREADS = {"pytorch": 2, "pytorch_1t": 1}
#: W3's peers also run as a grid search is run: a process per core, one thread each.
W3_PROCS = {"pytorch": "pytorch_procs", "sklearn": "sklearn_procs"}
#: Every form of each W3 peer (jaxmlp's ratio is quoted against the family's fastest form).
W3_FAMILIES = {"pytorch": ("pytorch", "pytorch_1t", "pytorch_procs"),
               "sklearn": ("sklearn", "sklearn_procs")}
ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "G")
TRAIN_WORKLOADS = ("W1", "W2", "W4")  # one model trained per framework and round


def workload_configs(quick: bool) -> dict:
    """The workloads (quick mode shrinks rows/epochs, never the model shapes)."""
    return {
        "W1": dict(name="digits 64-128-10 tanh CE", dataset="digits", hidden=[128], lr=0.1,
                   batch_size=128, epochs=5 if quick else 100, seed=0, task="classification"),
        "W2": dict(name="teacher 784-512-512-10 tanh CE", dataset="teacher",
                   n_rows=5_000 if quick else 200_000, hidden=[512, 512], lr=0.1,
                   batch_size=128, epochs=1, seed=0, task="classification"),
        "W3": dict(name="sweep 64 models on digits", dataset="digits", widths=[16, 32, 64, 128],
                   lrs=[0.01, 0.03, 0.1, 0.3], seeds=4, epochs=2 if quick else 50,
                   batch_size=128, task="classification"),
        "W4": dict(name="car-sensor 8-64-2 tanh MSE", dataset="car_sensor",
                   n_rows=5_000 if quick else 100_000, hidden=[64], lr=0.1, batch_size=128,
                   epochs=10, seed=0, task="regression"),
        "G": dict(name="per-example grads + manual vs autodiff (W1 model)",
                  batch_sizes=[128, 1024], reps=5 if quick else 30),
    }


def load_data(cfg):
    """Training arrays for a workload (X float32, y int32 labels or (n, k) float32)."""
    from jaxmlp.data import make_car_sensor, make_teacher
    if cfg["dataset"] == "digits":
        return digits_train_split()
    if cfg["dataset"] == "teacher":
        ds = make_teacher(cfg["n_rows"], 784, 10)
        return ds.X, ds.y
    if cfg["dataset"] == "car_sensor":
        ds = make_car_sensor(cfg["n_rows"])
        return ds.X, ds.y
    raise ValueError(cfg["dataset"])


def shared_init_and_order(sizes, seed, n, epochs):
    """jaxmlp's own initial weights and per-epoch data order for ``seed``.

    ``init_mlp(init_key(seed), sizes)`` is what ``fit`` does without ``params``; epoch ``e``'s
    order is ``jaxmlp.training.data_order(seed, e, n)``.
    """
    from jaxmlp.nn import init_mlp
    from jaxmlp.training import data_order, init_key
    params = init_mlp(init_key(seed), sizes, activation="tanh")
    perms = np.stack([data_order(seed, e, n) for e in range(epochs)])
    return ([(np.asarray(l["W"]), np.asarray(l["b"])) for l in params], perms)


def write_npz(path, X, y, params, order=None, **extra):
    """A child's input file: ``X``, ``y``, ``W0, b0, W1, b1, ...`` and (if given) ``order``."""
    arrs = {"X": X, "y": y, **extra}
    if order is not None:
        arrs["order"] = order
    for i, (W, b) in enumerate(params):
        arrs[f"W{i}"], arrs[f"b{i}"] = W, b
    np.savez(path, **arrs)



def write_training_data(wl: str, cfg: dict, tmp: Path):
    """W1/W2/W4's arrays, shared init and order as ``tmp/WL.npz``; sets ``cfg["n_outputs"]``.

    Returns:
        ``(X, y, sizes, path)``.
    """
    X, y = load_data(cfg)
    k = int(y.max()) + 1 if cfg["task"] == "classification" else int(y.shape[1])
    cfg["n_outputs"] = k
    sizes = [int(X.shape[1]), *cfg["hidden"], k]
    params, order = shared_init_and_order(sizes, cfg["seed"], len(X), cfg["epochs"])
    path = tmp / f"{wl}.npz"
    write_npz(path, X, y, params, order)
    return X, y, sizes, path


def write_g_data(w1cfg: dict, tmp: Path) -> Path:
    """G's data: W1's arrays, init and order, as ``tmp/G.npz`` (written once)."""
    path = tmp / "G.npz"
    if not path.exists():
        X, y = load_data(w1cfg)
        sizes = [X.shape[1], *w1cfg["hidden"], int(y.max()) + 1]
        params, order = shared_init_and_order(sizes, w1cfg["seed"], len(X), w1cfg["epochs"])
        write_npz(path, X, y, params, order)
    return path


def digits_train_split():
    """The digits train split's ``(X, y)`` (default ``DataConfig``): W1's, W3's and G's data."""
    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_splits
    s = load_splits(DataConfig(dataset="digits"))
    return s.X_train, s.y_train


def write_w3_data(cfg: dict, tmp: Path) -> Path:
    """W3's data as ``tmp/W3.npz`` (written once): the digits train split, each (width, seed)'s
    initial weights ``w{W}_s{S}_W{i}``/``_b{i}`` and each seed's order ``order_s{S}``."""
    path = tmp / "W3.npz"
    if path.exists():
        return path
    X, y = digits_train_split()
    arrs = {"X": X, "y": y}
    K = int(y.max()) + 1
    for seed in range(cfg["seeds"]):
        for w in cfg["widths"]:
            params, order = shared_init_and_order([X.shape[1], w, K], seed, len(X), cfg["epochs"])
            for i, (W, b) in enumerate(params):
                arrs[f"w{w}_s{seed}_W{i}"], arrs[f"w{w}_s{seed}_b{i}"] = W, b
        arrs[f"order_s{seed}"] = order
    np.savez(path, **arrs)
    return path


def gemm_peak_size(quick: bool) -> tuple[int, int]:
    """The GEMM peak measurement's ``(n, reps)``: an ``n^3`` float32 product, best of ``reps``."""
    return (1024, 3) if quick else (2048, 5)
