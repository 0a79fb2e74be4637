"""Child-process runners for ``scripts/bench.py``: one framework per process.

Usage (by bench.py, not by hand): ``python jaxmlp/bench/peers.py TASK.json RESULT.json``.

``TASK.json`` names a runner (``jaxmlp``, ``pytorch``, ``sklearn``, ``gemm_peak``,
``pex_jax``, ``pex_torch``, ``sweep_jaxmlp``, ``sweep_jaxmlp_cores``, ``sweep_pytorch``,
``sweep_sklearn``) and, for
training runners, a ``.npz`` written by the parent with the training data (``X``, ``y``), the
shared initial weights (``W0, b0, W1, b1, ...`` with ``W`` shaped ``(fan_in, fan_out)``) and
the data order (``order``: ``(epochs, n_train)`` int32, row ``e`` is jaxmlp's permutation for
epoch ``e``). Each runner imports only its own framework, times only the training loop and
writes timings plus the final weights back (``RESULT.json`` and ``RESULT.npz``) so the parent
can evaluate every framework's result with the same numpy code.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np


# ------------------------------------------------------------------------------------ helpers
def _load(task):
    with np.load(task["data"], allow_pickle=False) as z:
        arrs = {k: z[k] for k in z.files}
    n_layers = sum(1 for k in arrs if k.startswith("W"))
    params = [(arrs[f"W{i}"], arrs[f"b{i}"]) for i in range(n_layers)]
    return arrs["X"], arrs["y"], arrs.get("order"), params


def _save_params(path, params):
    np.savez(path, **{f"W{i}": np.asarray(W, np.float32) for i, (W, _) in enumerate(params)},
             **{f"b{i}": np.asarray(b, np.float32) for i, (_, b) in enumerate(params)})


def _thread_env():
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
    return {k: os.environ[k] for k in keys if k in os.environ}


# ------------------------------------------------------------------------------------ jaxmlp
def run_jaxmlp(task, out_npz):
    import jax
    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig

    X, y, _, params = _load(task)
    cfg = task["config"]
    # fit() donates the train state, including the params passed in: build fresh device
    # arrays for every call.
    init = lambda: [{"W": jax.numpy.array(W), "b": jax.numpy.array(b)} for W, b in params]
    model = ModelConfig(hidden=tuple(cfg["hidden"]), activation="tanh")
    train = TrainConfig(lr=cfg["lr"], batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                        seed=cfg["seed"], grad=task.get("grad", "autodiff"))
    t0 = time.perf_counter()
    p, hist = jaxmlp.fit((X, y), model=model, train=train, params=init())
    jax.block_until_ready(p)
    wall = time.perf_counter() - t0
    fin = hist["final"]
    res = {"compile_s": fin["compile_s"], "train_s": fin["train_s"], "fit_wall_s": wall,
           "samples_per_s_reported": fin["samples_per_s"],
           "running_loss_last_epoch": float(hist["train_loss"][-1]),
           "diverged": fin["diverged"], "epochs_run": fin["epochs_run"],
           "threads": {"jax_devices": [str(d) for d in jax.devices()],
                       "cpu_count": os.cpu_count(), "env": _thread_env()},
           "versions": {"jax": jax.__version__, "jaxlib": jax.lib.__version__
                        if hasattr(jax.lib, "__version__") else None}}
    _save_params(out_npz, [(l["W"], l["b"]) for l in p])
    if task.get("epoch1_check"):
        # Untimed: one epoch from the same initial weights (same compiled program, the epoch
        # count is a traced value), to compare with sklearn run on the same order.
        p1, _ = jaxmlp.fit((X, y), model=model, train=train.replace(epochs=1), params=init())
        _save_params(out_npz.replace(".npz", "_epoch1.npz"), [(l["W"], l["b"]) for l in p1])
        res["epoch1_params"] = out_npz.replace(".npz", "_epoch1.npz")
    return res


# ------------------------------------------------------------------------------------ PyTorch
def _torch_model(torch, params):
    layers = []
    for i, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def _torch_train(torch, model, X, y, order, lr, B, epochs, classification):
    """Idiomatic eager PyTorch: per-epoch index permutation slicing the data tensors."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
    n = X.shape[0]
    running = None
    for e in range(epochs):
        perm = order[e]
        running = torch.zeros((), dtype=torch.float32)
        for i in range(0, n, B):
            idx = perm[i:i + B]
            xb, yb = X[idx], y[idx]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.detach() * idx.shape[0]
    return float(running) / n


def run_pytorch(task, out_npz):
    import torch
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    X, y, order, params = _load(task)
    cfg = task["config"]
    classification = cfg["task"] == "classification"
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64) if classification else y)
    ordt = torch.from_numpy(order.astype(np.int64))
    model = _torch_model(torch, params)
    t0 = time.perf_counter()
    last = _torch_train(torch, model, Xt, yt, ordt, cfg["lr"], cfg["batch_size"], cfg["epochs"],
                        classification)
    train_s = time.perf_counter() - t0
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    _save_params(out_npz, [(l.weight.detach().numpy().T, l.bias.detach().numpy()) for l in lins])
    return {"train_s": train_s, "running_loss_last_epoch": last,
            "threads": {"torch_num_threads": torch.get_num_threads(),
                        "torch_interop_threads": torch.get_num_interop_threads(),
                        "env": _thread_env()},
            "versions": {"torch": torch.__version__},
            "torch_config": torch.__config__.parallel_info().splitlines()[:8]}


# ------------------------------------------------------------------------------------ sklearn
def _sk_estimator(cfg, epochs, lr, shuffle):
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


def _sk_prepare(est, X, y, params):
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


def run_sklearn(task, out_npz):
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    X, y, order, params = _load(task)
    cfg = task["config"]
    lr_sk, factor = _sk_lr(cfg)
    yk = y if cfg["task"] == "classification" else y
    est = _sk_prepare(_sk_estimator(cfg, cfg["epochs"], lr_sk, shuffle=True), X, yk, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, yk)
        train_s = time.perf_counter() - t0
    loss_scale = 1.0 if cfg["task"] == "classification" else 2.0  # sklearn reports 0.5*MSE
    res = {"train_s": train_s, "n_iter": int(est.n_iter_),
           "running_loss_last_epoch": float(est.loss_curve_[-1]) * loss_scale,
           "lr_used": lr_sk, "lr_factor": factor,
           "dtypes": {"X": str(X.dtype), "coefs": str(est.coefs_[0].dtype),
                      "intercepts": str(est.intercepts_[0].dtype)},
           "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
           "threads": {"env": _thread_env()}}
    try:
        from threadpoolctl import threadpool_info
        res["threads"]["threadpools"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
            for d in threadpool_info()]
    except Exception as e:  # pragma: no cover
        res["threads"]["threadpools"] = f"unavailable: {e}"
    _save_params(out_npz, list(zip(est.coefs_, est.intercepts_)))
    if task.get("epoch1_check"):
        # Untimed: one epoch in jaxmlp's epoch-0 order (shuffle=False on pre-permuted rows),
        # to check sklearn's maths (including the regression learning-rate factor) exactly.
        est1 = _sk_prepare(_sk_estimator(cfg, 1, lr_sk, shuffle=False), X, yk, params)
        Xo, yo = X[order[0]], yk[order[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est1.fit(Xo, yo)
        p1 = out_npz.replace(".npz", "_epoch1.npz")
        _save_params(p1, list(zip(est1.coefs_, est1.intercepts_)))
        res["epoch1_params"] = p1
    return res


# ------------------------------------------------------------------------------------ peak
def run_gemm_peak(task, out_npz):
    """Best-of-N float32 GEMM throughput of jnp.dot and numpy @ (n x n x n)."""
    n = int(task.get("n", 2048))
    reps = int(task.get("reps", 5))
    flop = 2.0 * n ** 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    res = {"n": n, "reps": reps}
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    res["numpy_gflops"] = flop / min(times) / 1e9
    import jax
    import jax.numpy as jnp
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    f = jax.jit(jnp.dot)
    f(ja, jb).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f(ja, jb).block_until_ready()
        times.append(time.perf_counter() - t0)
    res["jax_gflops"] = flop / min(times) / 1e9
    return res


# ------------------------------------------------------------------------------------ per-example grads
def _bench(fn, reps, min_time=0.2):
    """Median seconds per call after one warm-up call (which includes any compile)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50 * reps:
            break
    return {"first_call_s": first, "median_s": float(np.median(times)),
            "min_s": float(np.min(times)), "calls": len(times)}


def run_pex_jax(task, out_npz):
    import jax
    import jaxmlp
    X, y, _, params = _load(task)
    p = [{"W": jax.numpy.asarray(W), "b": jax.numpy.asarray(b)} for W, b in params]
    res = {}
    fns = {
        "per_example_grads_vmap": jax.jit(lambda p, x, y: jaxmlp.per_example_grads(p, x, y)),
        "per_example_grad_norms": jax.jit(lambda p, x, y: jaxmlp.per_example_grad_norms(p, x, y)),
        "batch_grad": jax.jit(jax.grad(lambda p, x, y: jaxmlp.batch_loss(p, x, y))),
    }
    for B in task["batch_sizes"]:
        xb, yb = jax.numpy.asarray(X[:B]), jax.numpy.asarray(y[:B])
        for name, f in fns.items():
            res[f"{name}@B={B}"] = _bench(
                lambda: jax.block_until_ready(f(p, xb, yb)), task["reps"])
        # correctness: norms from the vmap grads equal the fast norms
        g = fns["per_example_grads_vmap"](p, xb, yb)
        sq = sum(np.sum(np.asarray(l).reshape(B, -1) ** 2, axis=1) for l in jax.tree.leaves(g))
        nrm = np.asarray(fns["per_example_grad_norms"](p, xb, yb))
        res[f"norms_match@B={B}"] = bool(np.allclose(np.sqrt(sq), nrm, rtol=1e-3, atol=1e-5))
    return res


def run_pex_torch(task, out_npz):
    import torch
    from torch.func import functional_call, grad, vmap
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    X, y, _, params = _load(task)
    model = _torch_model(torch, params)
    pdict = {k: v.detach() for k, v in model.named_parameters()}
    loss_fn = torch.nn.functional.cross_entropy

    def one(pd, xi, yi):
        return loss_fn(functional_call(model, pd, (xi[None],)), yi[None])

    pex = vmap(grad(one), in_dims=(None, 0, 0))
    res = {}
    for B in task["batch_sizes"]:
        xb = torch.from_numpy(X[:B])
        yb = torch.from_numpy(y[:B].astype(np.int64))
        res[f"torch_func_vmap_grad@B={B}"] = _bench(lambda: pex(pdict, xb, yb), task["reps"])

        def batch():
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
        res[f"torch_batch_grad@B={B}"] = _bench(batch, task["reps"])
    res["versions"] = {"torch": torch.__version__}
    return res


# ------------------------------------------------------------------------------------ W3 sweep
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
    finals = {}
    if which == "pytorch":
        import torch
        torch.set_num_threads(int(task.get("torch_threads", 2)))
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    t0 = time.perf_counter()
    for w in cfg["widths"]:
        for lr in cfg["lrs"]:
            for s in range(cfg["seeds"]):
                params = [(arrs[f"w{w}_s{s}_W{i}"], arrs[f"w{w}_s{s}_b{i}"]) for i in range(2)]
                order = arrs[f"order_s{s}"]
                c = dict(cfg, hidden=[w], lr=lr, seed=s, epochs=cfg["epochs"],
                         task="classification")
                if which == "pytorch":
                    m = _torch_model(torch, params)
                    _torch_train(torch, m, Xt, yt, torch.from_numpy(order.astype(np.int64)), lr,
                                 cfg["batch_size"], cfg["epochs"], True)
                    lins = [l for l in m if isinstance(l, torch.nn.Linear)]
                    fin = [(l.weight.detach().numpy().T.copy(), l.bias.detach().numpy().copy())
                           for l in lins]
                else:
                    from sklearn.exceptions import ConvergenceWarning
                    est = _sk_prepare(_sk_estimator(c, cfg["epochs"], lr, True), X, y, params)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        est.fit(X, y)
                    fin = list(zip(est.coefs_, est.intercepts_))
                finals[f"w{w}_lr{lr:g}_s{s}"] = fin
    total = time.perf_counter() - t0
    np.savez(out_npz, **{f"{k}_{n}{i}": (W if n == "W" else b)
                         for k, fin in finals.items() for i, (W, b) in enumerate(fin)
                         for n in ("W", "b")})
    return {"total_s": total, "n_models": len(finals)}


RUNNERS = {
    "jaxmlp": run_jaxmlp,
    "pytorch": run_pytorch,
    "sklearn": run_sklearn,
    "gemm_peak": run_gemm_peak,
    "pex_jax": run_pex_jax,
    "pex_torch": run_pex_torch,
    "sweep_jaxmlp": run_sweep_jaxmlp,
    "sweep_jaxmlp_cores": run_sweep_jaxmlp_cores,
    "sweep_pytorch": lambda t, o: run_sweep_peer(t, o, "pytorch"),
    "sweep_sklearn": lambda t, o: run_sweep_peer(t, o, "sklearn"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    task_path, result_path = argv
    with open(task_path) as f:
        task = json.load(f)
    out_npz = result_path.replace(".json", ".npz")
    try:
        res = RUNNERS[task["runner"]](task, out_npz)
        res["ok"] = True
        if os.path.exists(out_npz):
            res["params"] = out_npz
    except Exception as e:  # reported, not hidden: the parent prints it
        import traceback
        res = {"ok": False, "error": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc()[-4000:]}
    with open(result_path, "w") as f:
        json.dump(res, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
