"""W3's child runners: the 64-model grid as one ``jaxmlp.sweep`` call, and as 64 fits one
after another in PyTorch or scikit-learn (same per-(width, seed) weights and orders)."""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from jaxmlp.bench.peers.sklearn_runs import sk_estimator, sk_in_order, sk_prepare
from jaxmlp.bench.peers.torch_runs import torch_model, torch_train, torch_warmup


#: What one process of a process-per-core grid search runs with: one thread everywhere.
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


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


def _start(arrs, width, seed):
    """The initial ``[(W, b), (W, b)]`` of the (``width``, ``seed``) model (``write_w3_data``)."""
    return [(arrs[f"w{width}_s{seed}_W{i}"], arrs[f"w{width}_s{seed}_b{i}"]) for i in range(2)]


def _fit_models(arrs, cfg, task, which, models, barrier=None):
    """Fit ``models`` [(width, lr, seed)] one after another: set-up, warm-up at every width's
    shapes and each model's start untimed, then (after ``barrier``, if given) the timed fits.
    Returns ``(start, end, {key: final params})``, ``time.perf_counter`` values (a system-wide
    monotonic clock on Linux, so comparable between processes)."""
    X, y = arrs["X"], arrs["y"]
    make = _torch_fitter if which == "pytorch" else _sklearn_fitter
    fit_one = make(X, y, cfg, task, {w: _start(arrs, w, 0) for w, _, _ in models})
    ready = [fit_one.prepare(_start(arrs, w, s), w, lr, s) for w, lr, s in models]
    if barrier is not None:
        barrier.wait()
    finals = {}
    t0 = time.perf_counter()
    for (w, lr, s), start in zip(models, ready):
        finals[f"w{w}_lr{lr:g}_s{s}"] = fit_one(start, arrs[f"order_s{s}"], lr)
    return t0, time.perf_counter(), finals


def _worker(args):
    """One process of ``run_sweep_peer_procs``: its share of the models, one thread."""
    task, which, models, barrier = args
    return _fit_models(_sweep_models(task), task["config"], dict(task, torch_threads=1), which,
                       models, barrier)


def run_sweep_peer_procs(task, out_npz, which):
    """The 64 fits split over one process per core (each with one thread), as a user runs a
    grid search (joblib, a process pool). Each process sets up, warms up and prepares its
    models untimed, then all start together (a barrier); timed from the first start to the last
    end. Models are dealt round-robin, so every process gets every width."""
    import multiprocessing as mp
    cfg = task["config"]
    n = int(task.get("procs") or os.cpu_count() or 1)
    models = [(w, lr, s) for w in cfg["widths"] for lr in cfg["lrs"] for s in range(cfg["seeds"])]
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)  # inherited by the spawned workers before they load numpy
    try:
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(n) as pool:
            barrier = manager.Barrier(n)
            parts = pool.map(_worker, [(task, which, models[i::n], barrier) for i in range(n)])
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    finals = {k: v for _, _, f in parts for k, v in f.items()}
    _save_finals(out_npz, finals)
    return {"total_s": max(p[1] for p in parts) - min(p[0] for p in parts),
            "n_models": len(finals), "processes": n,
            "process_s": [p[1] - p[0] for p in parts]}


def _save_finals(out_npz, finals):
    np.savez(out_npz, **{f"{k}_{n}{i}": (W if n == "W" else b)
                         for k, fin in finals.items() for i, (W, b) in enumerate(fin)
                         for n in ("W", "b")})


def _sweep_models(task):
    with np.load(task["data"], allow_pickle=False) as z:
        arrs = {k: z[k] for k in z.files}
    return arrs


def run_sweep_peer(task, out_npz, which):
    """64 fits one after another with the same per-(width, seed) initial weights and orders."""
    arrs = _sweep_models(task)
    cfg = task["config"]
    models = [(w, lr, s) for w in cfg["widths"] for lr in cfg["lrs"] for s in range(cfg["seeds"])]
    t0, t1, finals = _fit_models(arrs, cfg, task, which, models)
    total = t1 - t0
    _save_finals(out_npz, finals)
    res = {"total_s": total, "n_models": len(finals)}
    if which == "sklearn" and task.get("in_order_check"):
        # untimed: every model again in jaxmlp's batch order (its maths at round-off)
        path = out_npz.replace(".npz", "_in_order.npz")
        _save_finals(path, {f"w{w}_lr{lr:g}_s{s}": sk_in_order(
            dict(cfg, hidden=[w], seed=s, task="classification"), lr, arrs["X"], arrs["y"],
            _start(arrs, w, s), arrs[f"order_s{s}"]) for w, lr, s in models})
        res["in_order_params"] = path
    return res


class _Fitter:
    """A peer's ``fit(start, order, lr) -> final [(W, b), ...]`` (timed) with its untimed
    ``prepare(params, width, lr, seed) -> start``."""

    def __init__(self, fit, prepare):
        self.fit, self.prepare = fit, prepare

    def __call__(self, start, order, lr):
        return self.fit(start, order, lr)


def _torch_fitter(X, y, cfg, task, warm: dict):
    """PyTorch (threads and tensors set up here; a warm-up step at each width's shapes): a
    model is built from its initial weights when prepared, trained in jaxmlp's order."""
    import torch
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    for p in warm.values():
        torch_warmup(torch, p, Xt, yt, cfg["lrs"][0], cfg["batch_size"], True)

    def fit(m, order, lr):
        torch_train(torch, m, Xt, yt, torch.from_numpy(order.astype(np.int64)), lr,
                    cfg["batch_size"], cfg["epochs"], True)
        lins = [l for l in m if isinstance(l, torch.nn.Linear)]
        return [(l.weight.detach().numpy().T.copy(), l.bias.detach().numpy().copy())
                for l in lins]
    return _Fitter(fit, lambda params, w, lr, s: torch_model(torch, params))


def _sklearn_fitter(X, y, cfg, task, warm: dict):
    """scikit-learn (its own shuffle: ``order`` is not used); each estimator's untimed prefit
    (``sk_prepare``: it builds the estimator's attributes, then takes the initial weights) is
    its warm-up, done when prepared."""
    from sklearn.exceptions import ConvergenceWarning

    def prepare(params, w, lr, s):
        c = dict(cfg, hidden=[w], lr=lr, seed=s, epochs=cfg["epochs"], task="classification")
        return sk_prepare(sk_estimator(c, cfg["epochs"], lr, True), X, y, params)

    def fit(est, order, lr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return list(zip(est.coefs_, est.intercepts_))
    return _Fitter(fit, prepare)
