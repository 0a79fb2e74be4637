"""Driving a sweep program's compiled chunks: data orders per slot, streams (several executions
of one executable on parts of the models, one CPU device), snapshots for checkpoints."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from jaxmlp.parallel import to_host
from jaxmlp.sweeps.program import Program, compile_chunk, on_groups, replicate, shard_models
from jaxmlp.training import OrdersAhead, chunk_orders, models_input
from jaxmlp.training.init import restore_leaves

# At most this many streams (``streams_for``): two were measured (on 2 cores); many small
# parts would each lose the batching of the models into wide products.
MAX_STREAMS = 2


def streams_for(prog: Program) -> int:
    """How many concurrent executions a program's model axis is split into on one CPU device.

    XLA:CPU leaves part of a 2-core machine idle during a sweep step; two executions of the
    same executable on halves of the models, from two threads, fill it (the run 1.2x faster,
    about what one host device per core gives, without the ``XLA_FLAGS`` that must be set
    before JAX starts). One per core up to ``MAX_STREAMS``, as many as divide the slots
    (models sharing an order).
    """
    if prog.mesh.size != 1 or prog.spec.mesh is not None or jax.default_backend() != "cpu":
        return 1
    slots = prog.layout.n_slots
    most = min(os.cpu_count() or 1, slots, MAX_STREAMS)
    return next(s for s in range(most, 0, -1) if slots % s == 0)


def split(tree, parts: int) -> list:
    """A host pytree with a leading model axis cut into ``parts`` equal consecutive pieces."""
    leaves, treedef = jax.tree.flatten(tree)
    pieces = [np.split(np.asarray(a), parts) for a in leaves]
    return [jax.tree.unflatten(treedef, [p[i] for p in pieces]) for i in range(parts)]


def concat(trees: list):
    """Host pytrees with a leading model axis joined along it (``split`` undone)."""
    return jax.tree.map(lambda *xs: np.concatenate(xs), *trees)


def part_abstract(abstract, parts: int):
    """The shapes and placement of one of ``parts`` equal parts of an abstract state."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((a.shape[0] // parts, *a.shape[1:]),
                                                       a.dtype, sharding=a.sharding), abstract)


def stream_hparams(prog: Program, streams: int) -> list:
    """The program's hyperparameters cut into one part per stream (consecutive slots)."""
    return [prog.hp] if streams == 1 else [shard_models(p, prog.mesh)
                                           for p in split(to_host(prog.hp), streams)]


def model_counts(state: tuple) -> dict:
    """How many of the state's models are live, stopped early and diverged (one host fetch
    of two flags per model)."""
    flags = to_host([(g["stopped"], g["diverged"]) for g in state])
    diverged = sum(int(np.sum(d)) for _, d in flags)
    stopped = sum(int(np.sum(s & ~d)) for s, d in flags)
    total = sum(int(np.size(d)) for _, d in flags)
    return {"live": total - stopped - diverged, "stopped": stopped, "diverged": diverged}


def all_done(state: tuple) -> bool:
    """Every model of every group stopped early or diverged."""
    return model_counts(state)["live"] == 0


def run_program(prog: Program, state: tuple, hps: list, epochs: int, progress=None,
                start_epoch: int = 0, chunks: list | None = None, on_chunk=None, compiling=None):
    """Drive one program's compiled chunks (cached per program shape like single runs); the
    slots' seeds set the data orders. A resumed program passes the epoch it reached and its
    metric chunks so far; ``progress(epoch, model_counts)`` and ``on_chunk(epoch, whole,
    chunks)`` run on the host after every chunk (progress, checkpointing, signals), ``whole()``
    giving the whole state (called only when needed; before the next chunk, which donates it).
    ``compiling``: a future of ``compile_chunk``'s result, when the chunk is already being
    compiled. ``hps``: the hyperparameters of each stream
    (``streams_for``, ``stream_hparams``): with more than one (one device), the slots are cut
    into as many consecutive parts, each run by the same executable in its own thread; the
    state handed to ``on_chunk`` and returned is whole.

    Returns ``(state, history, compile_s, run_s)``: history maps each metric (and ``ran``) to
    an ``(n_models_in_slot_order, epochs)`` host array (``Layout.slots`` order).
    """
    C, mesh = prog.spec.chunk_epochs, prog.mesh
    streams = len(hps)
    chunks = list(chunks or [])
    epoch = start_epoch
    compile_s, t0 = 0.0, time.perf_counter()
    if epoch < epochs and not all_done(state):
        parts = [state] if streams == 1 else [shard_models(p, mesh)
                                              for p in split(to_host(state), streams)]
        whole = lambda: parts[0] if streams == 1 else concat([to_host(p) for p in parts])
        per = len(prog.seeds) // streams
        part_seeds = [prog.seeds[i * per:(i + 1) * per] for i in range(streams)]
        exe, compile_s, _ = (compiling.result() if compiling is not None else
                             compile_chunk(prog, parts[0], hps[0]))
        exe = on_groups(prog.layout, exe)
        t0 = time.perf_counter()

        run_part = _part_runner(prog, exe, hps, part_seeds, epochs)
        pool = ThreadPoolExecutor(max_workers=streams) if streams > 1 else None
        try:
            while epoch < epochs:
                ep = np.arange(epoch, epoch + C, dtype=np.int32)
                if pool is None:
                    out = [run_part(parts[0], 0, ep)]
                else:
                    out = list(pool.map(run_part, parts, range(streams), [ep] * streams))
                parts = [st for st, _ in out]
                chunks.append(concat([m for _, m in out]))
                epoch += C
                counts = model_counts(tuple(g for p in parts for g in p))
                if progress is not None:
                    progress(min(epoch, epochs), counts)
                if on_chunk is not None:
                    on_chunk(min(epoch, epochs), whole, chunks)
                if counts["live"] == 0:
                    break
        finally:
            if pool is not None:
                pool.shutdown()
        state = parts[0] if streams == 1 else shard_models(whole(), mesh)
    jax.block_until_ready(jax.tree.leaves(state))
    run_s = time.perf_counter() - t0
    hist = {k: np.concatenate([c[k] for c in chunks], axis=1)[:, :epochs] for k in chunks[0]}
    return state, hist, compile_s, run_s


def _part_runner(prog: Program, exe, hps: list, part_seeds: list, epochs: int):
    """``run_part(state, i, ep)``: stream ``i``'s chunk of epochs ``ep`` from ``state``, returning
    ``(state, host metrics)``; the stream's next chunk's data orders are drawn while the chunk
    runs (``OrdersAhead``)."""
    mesh, C = prog.mesh, prog.spec.chunk_epochs
    draw = lambda i: lambda ep: models_input(mesh, np.stack([
        chunk_orders(prog.spec, sd, ep, epochs) for sd in part_seeds[i]]))
    ahead = [OrdersAhead(draw(i)) for i in range(len(hps))]

    def run_part(state, i, ep):
        st, metrics = exe(state, hps[i], prog.data, *replicate((ep, ep < epochs), mesh),
                          ahead[i].take(ep))
        if ep[-1] + 1 < epochs:  # the next chunk's orders, while this one runs
            ahead[i].ahead(ep + C)
        return st, to_host(metrics)  # one host sync per chunk
    return run_part


def restore_program_state(template, saved):
    """A program's saved state (a resumed snapshot's: the state itself or the list of its
    leaves) as host arrays in the structure of ``template`` (the program's ``abstract``
    state); ``CheckpointError`` if the leaves' number, shapes or dtypes differ from it."""
    return restore_leaves(template, jax.tree.leaves(saved), "the saved sweep program")
