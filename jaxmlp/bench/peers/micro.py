"""Timed calls rather than training runs: the machine's float32 GEMM peak, and per-example
gradients in JAX and in PyTorch (workload G)."""
from __future__ import annotations

import time

import numpy as np

from jaxmlp.bench.peers.common import load_task, time_calls
from jaxmlp.bench.peers.torch_runs import torch_model


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
def run_pex_jax(task, out_npz):
    """G in JAX: per-example gradients (vmap), their norms (fast path) and a batch gradient,
    per batch size; the fast norms checked against the vmap gradients'."""
    import jax
    import jaxmlp
    X, y, _, params = load_task(task)
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
            res[f"{name}@B={B}"] = time_calls(
                lambda: jax.block_until_ready(f(p, xb, yb)), task["reps"])
        # correctness: norms from the vmap grads equal the fast norms
        g = fns["per_example_grads_vmap"](p, xb, yb)
        sq = sum(np.sum(np.asarray(l).reshape(B, -1) ** 2, axis=1) for l in jax.tree.leaves(g))
        nrm = np.asarray(fns["per_example_grad_norms"](p, xb, yb))
        res[f"norms_match@B={B}"] = bool(np.allclose(np.sqrt(sq), nrm, rtol=1e-3, atol=1e-5))
    return res


def run_pex_torch(task, out_npz):
    """G in PyTorch: ``torch.func`` vmap(grad) per-example gradients and a batch gradient."""
    import torch
    from torch.func import functional_call, grad, vmap
    torch.set_num_threads(int(task.get("torch_threads", 2)))
    X, y, _, params = load_task(task)
    model = torch_model(torch, params)
    pdict = {k: v.detach() for k, v in model.named_parameters()}
    loss_fn = torch.nn.functional.cross_entropy

    def one(pd, xi, yi):
        return loss_fn(functional_call(model, pd, (xi[None],)), yi[None])

    pex = vmap(grad(one), in_dims=(None, 0, 0))
    res = {}
    for B in task["batch_sizes"]:
        xb = torch.from_numpy(X[:B])
        yb = torch.from_numpy(y[:B].astype(np.int64))
        res[f"torch_func_vmap_grad@B={B}"] = time_calls(lambda: pex(pdict, xb, yb), task["reps"])

        def batch():
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
        res[f"torch_batch_grad@B={B}"] = time_calls(batch, task["reps"])
    res["versions"] = {"torch": torch.__version__}
    return res
