"""scikit-learn's child runner: ``MLPClassifier``/``MLPRegressor`` with plain SGD, started from
the shared initial weights, shuffling with its own RNG (plus an untimed run in jaxmlp's
batch order to check the maths)."""
from __future__ import annotations

import time
import warnings

import numpy as np

from jaxmlp.bench.machine import thread_env
from jaxmlp.bench.peers.common import load_task, save_params


def sk_estimator(cfg, epochs, lr, shuffle):
    """Plain SGD (no momentum, no L2, no early stopping) with tanh, as jaxmlp trains."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    cls = MLPClassifier if cfg["task"] == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=tuple(cfg["hidden"]), activation="tanh", solver="sgd",
               alpha=0.0, batch_size=cfg["batch_size"], learning_rate="constant",
               learning_rate_init=lr, max_iter=epochs, shuffle=shuffle,
               random_state=cfg["seed"], tol=0.0, n_iter_no_change=epochs + 1,
               momentum=0.0, nesterovs_momentum=False, early_stopping=False)


def _sk_lr(cfg):
    """sklearn's squared loss is 0.5 * mean over batch *and* outputs, but its gradient uses
    delta = pred - y divided by the batch size only, i.e. the gradient of
    0.5 * mean_batch sum_outputs (pred - y)^2 = (k / 2) * jaxmlp's MSE (mean over outputs,
    then batch). Matching jaxmlp's step lr * grad(MSE) needs lr_sklearn = lr * 2 / k
    (k = 2 for car-sensor: the factor is exactly 1). Log-loss with softmax matches as is."""
    if cfg["task"] == "classification":
        return cfg["lr"], 1.0
    k = int(cfg["n_outputs"])
    return cfg["lr"] * 2.0 / k, 2.0 / k


def sk_prepare(est, X, y, params):
    """Make ``est`` start from the shared initial weights.

    sklearn has no init-weights argument. The honest route: a 1-epoch ``fit`` on a small
    slice (untimed; it only builds the label binarizer, layer shapes and attributes), then
    overwrite ``coefs_`` / ``intercepts_`` with the shared weights and refit with
    ``warm_start=True``; a warm-started ``fit`` skips ``_initialize`` and builds a fresh SGD
    optimizer around the overwritten arrays (no momentum state carried over; momentum=0).
    """
    from sklearn.exceptions import ConvergenceWarning
    k = min(len(X), 2048)
    max_iter = est.max_iter
    est.set_params(max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:k], y[:k])
    if hasattr(est, "classes_") and len(est.classes_) != int(y.max()) + 1:
        with warnings.catch_warnings():  # the slice missed a class: set up on everything
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    est.coefs_ = [np.array(W, dtype=X.dtype, copy=True) for W, _ in params]
    est.intercepts_ = [np.array(b, dtype=X.dtype, copy=True) for _, b in params]
    est.set_params(max_iter=max_iter)
    return est


def sk_in_order(cfg, lr, X, y, params, order):
    """Final ``[(W, b), ...]`` of ``cfg["epochs"]`` epochs from ``params`` with every epoch in
    jaxmlp's order (``order[e]``): a warm-started one-epoch ``fit`` per epoch on the rows
    pre-permuted, ``shuffle=False``. Plain SGD keeps no state between epochs (no momentum, a
    constant rate), so this is the run jaxmlp and PyTorch do, up to float32 round-off."""
    from sklearn.exceptions import ConvergenceWarning
    est = sk_prepare(sk_estimator(cfg, 1, lr, shuffle=False), X, y, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for e in range(cfg["epochs"]):
            est.fit(X[order[e]], y[order[e]])
    return list(zip(est.coefs_, est.intercepts_))


def run_sklearn(task, out_npz):
    """W1/W4: ``fit`` from the shared weights with sklearn's own shuffle, timed."""
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    X, y, order, params = load_task(task)
    cfg = task["config"]
    lr_sk, factor = _sk_lr(cfg)
    yk = y if cfg["task"] == "classification" else y
    t_warm = time.perf_counter()
    est = sk_prepare(sk_estimator(cfg, cfg["epochs"], lr_sk, shuffle=True), X, yk, params)
    warmup_s = time.perf_counter() - t_warm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, yk)
        train_s = time.perf_counter() - t0
    loss_scale = 1.0 if cfg["task"] == "classification" else 2.0  # sklearn reports 0.5*MSE
    # time to result: its warm-up (the prefit that builds the estimator) and the training
    res = {"train_s": train_s, "warmup_s": warmup_s, "time_to_result_s": warmup_s + train_s,
           "n_iter": int(est.n_iter_),
           "running_loss_last_epoch": float(est.loss_curve_[-1]) * loss_scale,
           "lr_used": lr_sk, "lr_factor": factor,
           "dtypes": {"X": str(X.dtype), "coefs": str(est.coefs_[0].dtype),
                      "intercepts": str(est.intercepts_[0].dtype)},
           "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
           "threads": {"env": thread_env()}}
    try:
        from threadpoolctl import threadpool_info
        res["threads"]["threadpools"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for d in threadpool_info()]
    except Exception as e:  # pragma: no cover
        res["threads"]["threadpools"] = f"unavailable: {e}"
    save_params(out_npz, list(zip(est.coefs_, est.intercepts_)))
    if task.get("in_order_check"):
        # Untimed: the whole run again in jaxmlp's batch order, to check sklearn's maths
        # (including the regression learning-rate factor) against jaxmlp's to round-off.
        p1 = out_npz.replace(".npz", "_in_order.npz")
        save_params(p1, sk_in_order(cfg, lr_sk, X, yk, params, order))
        res["in_order_params"] = p1
    return res
