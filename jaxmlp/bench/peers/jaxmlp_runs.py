"""jaxmlp's child runner: ``jaxmlp.fit`` from the shared initial weights, timed by ``fit``
itself (compile and train apart)."""
from __future__ import annotations

import os
import time

from jaxmlp.bench.machine import thread_env
from jaxmlp.bench.peers.common import load_task, save_params


def run_jaxmlp(task, out_npz):
    """W1/W2/W4 (and G's grad modes): ``jaxmlp.fit`` from the shared weights; compile and
    train seconds as ``fit`` reports them. The default fit gives the time to result; when it
    compiled quick (a short run), a second fit at the full options gives the train-only
    columns (the compiled loop a long run gets), its params the ones checked."""
    import jax
    import jaxmlp
    from jaxmlp.config import ModelConfig, TrainConfig

    X, y, _, params = load_task(task)
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
    # time to result: the whole default fit call, every compile (init, chunk, final metrics)
    # included, at the compile tier fit chose for the run (``compiles_quick``)
    auto = {"time_to_result_s": wall, "auto_compile_s": fin["compile_s"],
            "auto_train_s": fin["train_s"], "auto_short_run": fin["short_run_compile"]}
    if fin["short_run_compile"]:  # train-only columns: the steady-state (full) program's loop
        p, hist = jaxmlp.fit((X, y), model=model, train=train, params=init(),
                             fast_compile=False)
        jax.block_until_ready(p)
        fin = hist["final"]
    res = {"compile_s": fin["compile_s"], "train_s": fin["train_s"], "fit_wall_s": wall, **auto,
           "samples_per_s_reported": fin["samples_per_s"],
           "running_loss_last_epoch": float(hist["train_loss"][-1]),
           "diverged": fin["diverged"], "epochs_run": fin["epochs_run"],
           "threads": {"jax_devices": [str(d) for d in jax.devices()],
                       "cpu_count": os.cpu_count(), "env": thread_env()},
           "versions": {"jax": jax.__version__, "jaxlib": jax.lib.__version__
                        if hasattr(jax.lib, "__version__") else None}}
    save_params(out_npz, [(l["W"], l["b"]) for l in p])
    return res
