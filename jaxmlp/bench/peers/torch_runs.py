"""PyTorch's child runner: idiomatic eager training from the shared initial weights, in
jaxmlp's batch order."""
from __future__ import annotations

import time

import numpy as np

from jaxmlp.bench.machine import thread_env
from jaxmlp.bench.peers.common import load_task, save_params


def torch_model(torch, params):
    """``nn.Sequential`` of Linear + Tanh layers holding the shared weights."""
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


def torch_train(torch, model, X, y, order, lr, B, epochs, classification):
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


def torch_warmup(torch, params, X, y, lr, B, classification):
    """The untimed warm-up every peer gets: training steps at the run's exact shapes (a full
    batch and, if the epoch ends with one, the partial last batch) on a throwaway copy of the
    model, so that first-use costs (PyTorch imports ``torch._dynamo`` on the first
    ``zero_grad``, allocator and kernel set-up) stay out of the timed loop."""
    n = X.shape[0]
    sizes = sorted({min(B, n), n % B} - {0})
    order = torch.arange(n).repeat(1, 1)
    for size in sizes:
        m = torch_model(torch, params)
        torch_train(torch, m, X[:size], y[:size], order[:, :size], lr, B, 1, classification)


def run_pytorch(task, out_npz):
    """W1/W2/W4: eager training from the shared weights in jaxmlp's batch order, timed."""
    import torch
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    X, y, order, params = load_task(task)
    cfg = task["config"]
    classification = cfg["task"] == "classification"
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64) if classification else y)
    ordt = torch.from_numpy(order.astype(np.int64))
    t_warm = time.perf_counter()
    torch_warmup(torch, params, Xt, yt, cfg["lr"], cfg["batch_size"], classification)
    warmup_s = time.perf_counter() - t_warm
    model = torch_model(torch, params)
    t0 = time.perf_counter()
    last = torch_train(torch, model, Xt, yt, ordt, cfg["lr"], cfg["batch_size"], cfg["epochs"],
                        classification)
    train_s = time.perf_counter() - t0
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    save_params(out_npz, [(l.weight.detach().numpy().T, l.bias.detach().numpy()) for l in lins])
    # time to result: the first-use costs the warm-up takes, then the training
    return {"train_s": train_s, "warmup_s": warmup_s, "time_to_result_s": warmup_s + train_s,
            "running_loss_last_epoch": last,
            "threads": {"torch_num_threads": torch.get_num_threads(),
                        "torch_interop_threads": torch.get_num_interop_threads(),
                        "env": thread_env()},
            "versions": {"torch": torch.__version__},
            "torch_config": torch.__config__.parallel_info().splitlines()[:8]}
