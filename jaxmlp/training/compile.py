"""Compiling training programs: XLA option sets, ``fast_jit``, the training chunk wrapped for
one model, a model axis or a packed sweep slot (``jit_chunk``: jitted, traced on first use),
and its executable compiled ahead of time once per process and shapes (``chunk_executable``:
memory, then ``aot_cache`` on disk, then trace + compile).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.training import aot_cache
from jaxmlp.training.memo import Programs, memo
from jaxmlp.training.metrics import split_metrics
from jaxmlp.training.placement import host_input, models_input
from jaxmlp.training.program import best_params, run_chunk
from jaxmlp.training.spec import Spec

# XLA:CPU's LLVM back end at -O1: the training chunk compiles ~40% faster (0.99 -> 0.60 s on the
# digits 64-128-10 run, `git show 77c33ef:BENCHMARKS.md`) and runs as fast, since its matmuls
# are library calls.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
# Programs that run once per run on small inputs (parameter initialisation): compile time is
# all that counts. Without XLA:CPU's fusion emitters and at -O0 the threefry random-number
# code of a 64-model sweep's initialisation compiles in 0.25 instead of 0.63 s
# (`git show 77c33ef:BENCHMARKS.md`).
CPU_ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
# Training programs whose whole run takes seconds (short sweeps, ``jaxmlp.sweep``): without
# XLA:CPU's fusion emitters a sweep's training chunk compiles ~0.2-0.7 s faster while its steps
# run as fast for narrow models and up to several times slower for wide ones (BENCHMARKS.md,
# "Size thresholds"; ``compiles_short`` decides).
CPU_SHORT_RUN_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}
# A sweep program is compiled for a short run (``compiles_short``; ``fit`` only when asked:
# ``fast_compile``) when its estimated training FLOPs (``jaxmlp.nn.training_flops_estimate``)
# are at most ``SHORT_RUN_FLOPS``, or at most ``SHORT_RUN_FLOPS_WIDE_FIRST`` when a model has
# one hidden layer of at least ``WIDE_FIRST_WIDTH`` units. The chunk then compiles ~0.2-0.7 s
# faster; its steps run as fast for most shapes but 1.4-2.5x slower for one wide hidden layer
# (its big input-side products lose XLA's fused emitters), hence the smaller bound there.
# Chosen on widths 16-4096 (depth 1-4, batch 32-1024, six run lengths) and an earlier
# held-out grid, then scored on fresh held-out shapes (``scripts/thresholds.py``,
# BENCHMARKS.md "Size thresholds").
SHORT_RUN_FLOPS = 1e12
# A fit's training chunk is compiled quick, at ``CPU_ONCE_OPTIONS`` (``fit`` with
# ``fast_compile`` None: ``compiles_quick``), when the extra training that costs is estimated
# at most ``QUICK_SAVING_S``: ``QUICK_COSTS_S`` seconds per unit of each kind of elementwise
# work (``jaxmlp.nn.elementwise_counts``). At -O0 without the fusion emitters the chunk
# compiles 0.64-1.1 s faster on CPU (README's default job: 1.16 -> 0.24 s of XLA compile)
# while its elementwise kernels run unvectorised (steps 1.5-3.4x slower). The costs were
# fitted on 16 shapes (least squares), the bound set a little under the median compile saved
# (0.83 s), and the rule scored on held-out shapes (``scripts/compile_tiers.py``;
# BENCHMARKS.md, "Compile tiers").
QUICK_COSTS_S = {"steps": 2.8e-5, "outputs": 6.4e-9, "weights": 2.3e-9, "inputs": 8.4e-9}
QUICK_SAVING_S = 0.7
SHORT_RUN_FLOPS_WIDE_FIRST = 3e10
WIDE_FIRST_WIDTH = 256

_EXECUTABLES = Programs()
# Compiles in the background (XLA releases the GIL): a run's training chunk while its
# initialisation is compiled and run in the calling thread.
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmlp-fit-compile")


def compiler_options(*, once: bool = False, short_run: bool = False) -> dict | None:
    """XLA options of a program: ``CPU_COMPILER_OPTIONS`` on the CPU backend
    (``CPU_ONCE_OPTIONS`` with ``once``, ``CPU_SHORT_RUN_OPTIONS`` with ``short_run``)."""
    if jax.default_backend() != "cpu":
        return None
    return CPU_ONCE_OPTIONS if once else CPU_SHORT_RUN_OPTIONS if short_run else CPU_COMPILER_OPTIONS


def compiles_short(flops: float, groups=()) -> bool:
    """The short-run rule, for a training program of ``flops`` estimated training FLOPs whose
    model groups have layer sizes ``groups`` (one ``(d_in, h_1, ..., d_out)`` per group)."""
    wide_first = any(len(sz) == 3 and sz[1] >= WIDE_FIRST_WIDTH for sz in groups)
    return flops <= (SHORT_RUN_FLOPS_WIDE_FIRST if wide_first else SHORT_RUN_FLOPS)


def quick_extra_s(counts: dict) -> float:
    """Estimated extra training seconds of a fit compiled quick, from its
    ``jaxmlp.nn.elementwise_counts``."""
    return sum(QUICK_COSTS_S[k] * v for k, v in counts.items())


def compiles_quick(counts: dict) -> bool:
    """The quick-compile rule of a fit with ``jaxmlp.nn.elementwise_counts`` ``counts``."""
    return quick_extra_s(counts) <= QUICK_SAVING_S


class Chunk(NamedTuple):
    """A training chunk's executable, the seconds it took to get, and where it came from:
    "memory" (this process compiled it before), "disk" (``aot_cache``: an earlier process
    did) or "compiled" (now)."""
    executable: Any
    compile_s: float
    source: str


def fast_jit(fn, *, once: bool = False, short_run: bool = False, **kwargs):
    """``jax.jit`` with ``compiler_options``: compile time matters as much as run time for
    small models (BENCHMARKS.md)."""
    return jax.jit(fn, compiler_options=compiler_options(once=once, short_run=short_run),
                   **kwargs)


def signature(tree):
    """What a compiled program's input ``tree`` fixes: structure, shapes, dtypes, placements."""
    return (jax.tree.structure(tree),
            tuple((tuple(a.shape), str(a.dtype), str(getattr(a, "sharding", "")))
                  for a in jax.tree.leaves(tree)))


@memo
def jit_chunk(spec: Spec, vmapped: int | tuple = 0, short_run: bool = False, once: bool = False):
    """The jitted chunk for ``spec`` (the train state is donated; ``short_run``, ``once`` as
    ``fast_jit``).
    Without ``vmapped`` and with ``spec.final_in_chunk`` it takes a seventh argument ``last``
    (bool: the run ends with this chunk) and returns ``(state, metrics, final)``: ``final``
    holds the train/val/test metrics of the params the run hands back (``split_metrics``)
    when ``last`` or the run stopped or diverged in this chunk, NaN otherwise, so a run needs
    no separate program for them.

    With ``vmapped = k >= 1`` the state and hyperparameters carry a leading model axis, the
    data is shared (sweeps) and every ``k`` consecutive models share one data order:
    ``orders`` has one row per group. For ``k > 1`` the groups are a second ``vmap`` level
    inside which the mini-batch is not batched, so the models' first-layer products become
    one wide matrix product per group instead of ``k`` small ones (`git show
    77c33ef:BENCHMARKS.md`, "Third round").

    With ``vmapped = (k_1, ..., k_G)`` the program is packed (``jaxmlp.sweep``): the state and
    hyperparameters are tuples of G groups (e.g. one per width, each at its own shapes), group
    ``g`` holding ``k_g`` models per slot, slot-major; every slot's models of all groups share
    one data order and step together (``on_models``). Metrics come back as one dict of
    ``(n_slots * sum(k), C)`` arrays, slot-major (a slot's group 1 models, then group 2's, ...).
    """
    fn = lambda st, hp, data, ep, act, orders: run_chunk(spec, st, hp, data, ep, act, orders,
                                                         select=bool(vmapped))
    if isinstance(vmapped, tuple):
        fn = _packed(fn, vmapped)
    elif not vmapped and spec.final_in_chunk:
        fn = _with_final(spec, fn)
    elif vmapped:
        fn = _per_model(spec, fn, int(vmapped))
    return fast_jit(fn, donate_argnums=(0,), short_run=short_run, once=once)


def _with_final(spec: Spec, fn):
    """One model's chunk ``fn`` that also returns the final metrics when the run ends in it."""
    def with_final(st, hp, data, ep, act, orders, last):
        st, metrics = fn(st, hp, data, ep, act, orders)
        final = lambda: split_metrics(spec, best_params(spec, st), hp, data)
        nans = lambda: jax.tree.map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype),
                                    jax.eval_shape(final))
        # only in the chunk where the run ends: one pass over every split per run
        return st, metrics, jax.lax.cond(last | st["stopped"] | st["diverged"], final, nans)
    return with_final


def _per_model(spec: Spec, fn, k: int):
    """``fn`` over a leading model axis, every ``k`` consecutive models sharing a data order."""
    two_d = spec.mesh is not None and "models" in spec.mesh.axis_names
    if k == 1:
        return jax.vmap(fn, in_axes=(0, 0, None, None, None, 0),
                        spmd_axis_name="models" if two_d else None)
    # the groups (each k models of one data order) carry the model axis of a 2-D mesh
    shared = jax.vmap(jax.vmap(fn, in_axes=(0, 0, None, None, None, None)),
                      in_axes=(0, 0, None, None, None, 0),
                      spmd_axis_name="models" if two_d else None)

    def grouped(st, hp, data, ep, act, orders):
        split = lambda a: a.reshape(a.shape[0] // k, k, *a.shape[1:])
        merge = lambda a: a.reshape(a.shape[0] * k, *a.shape[2:])
        st, metrics = shared(jax.tree.map(split, st), jax.tree.map(split, hp), data, ep, act,
                             orders)
        return jax.tree.map(merge, st), jax.tree.map(merge, metrics)
    return grouped


def _packed(fn, ks: tuple):
    """``fn`` (a chunk of one packed slot) over the slots of a packed program (see
    ``jit_chunk``): states and hyperparameters per group ``(n_slots * k_g, ...)``."""
    slots = jax.vmap(fn, in_axes=(0, 0, None, None, None, 0))

    def packed(st, hp, data, ep, act, orders):
        split = lambda tree: tuple(jax.tree.map(lambda a: a.reshape(-1, k, *a.shape[1:]), t)
                                   for t, k in zip(tree, ks))
        st, metrics = slots(split(st), split(hp), data, ep, act, orders)
        st = tuple(jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), t) for t in st)
        # per group (n_slots, C, k_g) -> (n_slots, k_g, C), groups side by side per slot
        flat = {key: jnp.concatenate([jnp.swapaxes(m[key], 1, 2) for m in metrics], axis=1)
                for key in metrics[0]}
        return st, {key: v.reshape(-1, v.shape[-1]) for key, v in flat.items()}
    return packed



def chunk_executable(spec: Spec, state, hp, data, C: int, vmapped: int | tuple = 0, mesh=None,
                     executor=None, short_run: bool = False, once: bool = False):
    """The ahead-of-time compiled chunk for these shapes (``vmapped``, ``short_run``, ``once``
    as ``jit_chunk``); compiled at most once per process.

    Returns a ``Chunk`` (``compile_s`` 0.0 when it came from this process's memory). With an
    ``executor`` (``concurrent.futures``), the chunk is traced and lowered in the calling
    thread and compiled in the executor, and a future of the ``Chunk`` is returned (XLA
    compiles without the GIL, so the caller can trace other programs meanwhile).
    """
    key = (spec, vmapped, short_run, once, signature(state), signature(hp), signature(data))
    exe = _EXECUTABLES.get(key)
    if exe is not None:
        done = Chunk(exe, 0.0, "memory")
        return done if executor is None else executor.submit(lambda: done)
    t0 = time.perf_counter()
    disk_key = (*key, compiler_options(short_run=short_run, once=once))
    # a program with a host callback (``steplog``) holds a pointer into this process: never
    # stored for, nor loaded from, another one
    on_disk = not spec.step_log
    exe = aot_cache.load("chunk", disk_key) if on_disk else None
    if exe is not None:
        _EXECUTABLES.put(key, exe)
        done = Chunk(exe, time.perf_counter() - t0, "disk")
        return done if executor is None else executor.submit(lambda: done)
    mesh = spec.mesh if mesh is None else mesh
    lowered = jit_chunk(spec, vmapped, short_run, once).lower(
        state, hp, data, *_chunk_inputs(spec, state, C, vmapped, mesh))

    def finish():
        exe = (aot_cache.compile_and_store("chunk", disk_key, lowered) if on_disk
               else lowered.compile())
        _EXECUTABLES.put(key, exe)
        return Chunk(exe, time.perf_counter() - t0, "compiled")
    return finish() if executor is None else executor.submit(finish)


def _chunk_inputs(spec: Spec, state, C: int, vmapped, mesh) -> tuple:
    """Placeholder epoch, active, order (and ``last``) inputs of a chunk, to lower it with."""
    ep = host_input(mesh, np.arange(C, dtype=np.int32))
    act = host_input(mesh, np.ones(C, bool))
    orders = np.zeros((C, spec.n_batches, spec.batch_size), np.int32)
    if vmapped:
        first, k = (state[0], vmapped[0]) if isinstance(vmapped, tuple) else (state, vmapped)
        groups = first["step"].shape[0] // int(k)
        orders = models_input(mesh, np.zeros((groups, *orders.shape), np.int32))
    else:
        orders = host_input(mesh, orders)
    last = (host_input(mesh, np.bool_(True)),) if spec.final_in_chunk and not vmapped else ()
    return (ep, act, orders, *last)


@memo
def split_metrics_jit(spec: Spec, vmapped: bool = False):
    """``split_metrics`` compiled once per spec (over a model axis when ``vmapped``)."""
    fn = lambda p, hp, data: split_metrics(spec, p, hp, data)
    return fast_jit(jax.vmap(fn, in_axes=(0, 0, None)) if vmapped else fn)
