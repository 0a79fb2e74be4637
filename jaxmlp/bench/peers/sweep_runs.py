"""W3's child runners: the 64-model grid as one ``jaxmlp.sweep`` call, and as 64 fits one
after another in PyTorch or scikit-learn (same per-(width, seed) weights and orders)."""
from __future__ import annotations

import time
import warnings

import numpy as np

from jaxmlp.bench.peers.sklearn_runs import sk_estimator, sk_prepare
from jaxmlp.bench.peers.torch_runs import torch_model, torch_train


def w3_splits():
    """The digits splits with empty val/test: W3's train-only work, on the same rows as the
    peers (which do no per-epoch evaluation)."""
    import dataclasses

    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_splits
    sp = load_splits(DataConfig(dataset="digits"))
    return dataclasses.replace(sp, X_val=sp.X_train[:0], y_val=sp.y_train[:0],
                               X_test=sp.X_train[:0], y_test=sp.y_train[:0])


def w3_sweep(cfg, splits):
    """W3's grid (``bench.workload_configs(...)["W3"]``) as one ``jaxmlp.sweep`` call."""
    from jaxmlp import sweep
    from jaxmlp.config import ModelConfig, TrainConfig
    return sweep(splits, model=ModelConfig(hidden=(max(cfg["widths"]),)),
                 train=TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"]),
                 grid={"width": list(cfg["widths"]), "lr": list(cfg["lrs"])}, seeds=cfg["seeds"])


def run_sweep_jaxmlp_cores(task, out_npz):
    """W3 as ``jaxmlp sweep`` runs it: one XLA host device per CPU core (``use_all_cpu_cores``,
    set before the backend starts), the model axis sharded over them."""
    from jaxmlp.cli import use_all_cpu_cores
    use_all_cpu_cores([])
    res = run_sweep_jaxmlp(task, out_npz)
    import jax
    res["devices"] = jax.device_count()
    return res


def run_sweep_jaxmlp(task, out_npz):
    """W3: jaxmlp's sweep engine (``jaxmlp.sweep``), total time including compile.

    Gets the digits train split only (as the peers, which do no per-epoch evaluation)."""
    sp = w3_splits()
    t0 = time.perf_counter()
    out = w3_sweep(task["config"], sp)
    total = time.perf_counter() - t0
    res = {"total_s": total, "result_type": type(out).__name__}
    for k in ("strategy", "buckets", "compile_s", "run_s", "total_s", "n_models", "flop_efficiency"):
        res[f"info_{k}"] = out.info[k]
    try:  # per-model final params, keyed like the peers' (width, lr, seed)
        arrs = {}
        for i, row in enumerate(out.rows):
            key = f"w{row['width']}_lr{row['lr']:g}_s{row['seed']}"
            for li, layer in enumerate(out.params(i)):
                arrs[f"{key}_W{li}"] = np.asarray(layer["W"], np.float32)
                arrs[f"{key}_b{li}"] = np.asarray(layer["b"], np.float32)
        np.savez(out_npz, **arrs)
        res["n_models"] = len(out.rows)
    except Exception as e:
        res["params_error"] = f"{type(e).__name__}: {e}"
    return res


def _sweep_models(task):
    with np.load(task["data"], allow_pickle=False) as z:
        arrs = {k: z[k] for k in z.files}
    return arrs


def run_sweep_peer(task, out_npz, which):
    """64 fits one after another with the same per-(width, seed) initial weights and orders."""
    arrs = _sweep_models(task)
    cfg = task["config"]
    X, y = arrs["X"], arrs["y"]
    fit_one = _torch_fitter(X, y, cfg, task) if which == "pytorch" else _sklearn_fitter(X, y, cfg)
    finals = {}
    t0 = time.perf_counter()
    for w in cfg["widths"]:
        for lr in cfg["lrs"]:
            for s in range(cfg["seeds"]):
                params = [(arrs[f"w{w}_s{s}_W{i}"], arrs[f"w{w}_s{s}_b{i}"]) for i in range(2)]
                finals[f"w{w}_lr{lr:g}_s{s}"] = fit_one(params, arrs[f"order_s{s}"], w, lr, s)
    total = time.perf_counter() - t0
    np.savez(out_npz, **{f"{k}_{n}{i}": (W if n == "W" else b)
                         for k, fin in finals.items() for i, (W, b) in enumerate(fin)
                         for n in ("W", "b")})
    return {"total_s": total, "n_models": len(finals)}


def _torch_fitter(X, y, cfg, task):
    """``fit(params, order, width, lr, seed) -> final [(W, b), ...]`` in PyTorch (set up here,
    before the clock starts: threads, tensors)."""
    import torch
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def fit(params, order, w, lr, s):
        m = torch_model(torch, params)
        torch_train(torch, m, Xt, yt, torch.from_numpy(order.astype(np.int64)), lr,
                    cfg["batch_size"], cfg["epochs"], True)
        lins = [l for l in m if isinstance(l, torch.nn.Linear)]
        return [(l.weight.detach().numpy().T.copy(), l.bias.detach().numpy().copy())
                for l in lins]
    return fit


def _sklearn_fitter(X, y, cfg):
    """``fit(params, order, width, lr, seed) -> final [(W, b), ...]`` in scikit-learn (its own
    shuffle: ``order`` is not used)."""
    def fit(params, order, w, lr, s):
        from sklearn.exceptions import ConvergenceWarning
        c = dict(cfg, hidden=[w], lr=lr, seed=s, epochs=cfg["epochs"], task="classification")
        est = sk_prepare(sk_estimator(c, cfg["epochs"], lr, True), X, y, params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return list(zip(est.coefs_, est.intercepts_))
    return fit
