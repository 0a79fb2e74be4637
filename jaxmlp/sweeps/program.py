"""One sweep program: its inputs (spec, stacked initial states, hyperparameters, data, mesh)
built from a ``jaxmlp.sweeps.plan.Layout``, and its compiled training chunk.

A program's state and hyperparameters are tuples of groups (``Layout``): one entry for a
padded program, one per width for a packed one; each entry's leaves carry a leading model axis
(``len(layout.takes[g])`` models), sharded over the mesh's "models" axis.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.training import aot_cache
from jaxmlp.config import ModelConfig, TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.nn import init_stds, standard_normals, training_flops_estimate
from jaxmlp.parallel import DATA, MODELS, mesh_for, rows_sharding
from jaxmlp.sweeps.axes import train_for
from jaxmlp.sweeps.plan import Layout, masked
from jaxmlp.training.memo import memo
from jaxmlp.training import (Spec, best_params, chunk_executable, compiler_options,
                             compiles_short, device_data, effective_momentum, fast_jit,
                             host_input, init_key, init_model, init_multipliers, init_state,
                             layer_lr_multipliers, make_hparams, make_spec, models_input, n_rows,
                             signature, split_metrics, uses_momentum)


def model_mesh(n_devices: int | None, data_devices: int = 1):
    """A ("models",) mesh over ``n_devices`` devices (default: all devices of all processes),
    or a 2-D ("models", "data") mesh whose data axis has ``data_devices`` devices."""
    if data_devices == 1:
        mesh = mesh_for(n_devices, axes=(MODELS,))
    else:
        n = len(jax.devices()) if n_devices is None else n_devices
        if data_devices < 1 or n % data_devices:
            raise ConfigError(f"{n} devices do not split into model groups of {data_devices} data devices")
        mesh = mesh_for(n, axes=(MODELS, DATA), shape=(n // data_devices, data_devices))
    return mesh, mesh.shape[MODELS]


def shard_models(tree, mesh):
    """Host arrays with a leading model axis, split over the mesh's model axis."""
    return jax.tree.map(lambda a: models_input(mesh, np.asarray(a)), tree)


def replicate(tree, mesh):
    """Host arrays every process holds, replicated over the mesh."""
    return jax.tree.map(lambda a: host_input(mesh, a), tree)


def _init_params(model: ModelConfig, member_sizes: tuple, sizes_max: tuple, take, seeds):
    """Initial params of the models ``take`` (program-member indices), each exactly as
    ``jaxmlp.fit`` draws it (its own sizes and seed), zero-padded to ``sizes_max``: per layer
    ``{"W": (len(take), fan_in, fan_out), "b": (len(take), fan_out)}``.

    The draws are nested across widths (``jaxmlp.nn.standard_normals``), so one draw at the
    widest shape per model, scaled by the model's own init std and cut to its sizes, is its
    initialisation: one random-number program whatever the widths. (Without JAX's
    partitionable threefry the draws do not nest; then every distinct size draws its own.)
    """
    keys = jax.vmap(init_key)(seeds)
    if not jax.config.jax_threefry_partitionable:
        parts, order = [], []
        for sizes in dict.fromkeys(member_sizes):
            ids = [i for i, sz in enumerate(member_sizes) if sz == sizes]
            p = jax.vmap(lambda k: init_model(k, model, list(sizes)))(keys[np.asarray(ids)])
            pad = lambda a, shape: jnp.pad(a, [(0, 0)] + [(0, t - s) for s, t in zip(a.shape[1:], shape)])
            parts.append([{"W": pad(l["W"], (sizes_max[k], sizes_max[k + 1])),
                           "b": pad(l["b"], (sizes_max[k + 1],))} for k, l in enumerate(p)])
            order += ids
        pos = np.argsort(np.asarray(order))[take]
        return jax.tree.map(lambda *xs: jnp.concatenate(xs)[pos], *parts)
    Z = jax.vmap(lambda k: standard_normals(k, sizes_max))(keys[take])
    sizes = np.asarray([member_sizes[t] for t in take])                 # (models, L + 1)
    # per model and layer, as init_model: W = (std * Z) * muP multiplier
    stds = np.asarray([init_stds(sz, init=model.init, activation=model.activation)
                       for sz in sizes], np.float32)
    mults = [init_multipliers(model, sz) for sz in sizes]              # None: no muP
    mults = None if mults[0] is None else np.asarray(mults, np.float32)
    params = []
    for l, z in enumerate(Z):
        W = stds[:, l, None, None] * z
        if mults is not None:
            W = W * mults[:, l, None, None]
        rows = np.arange(sizes_max[l]) < sizes[:, l, None]
        cols = np.arange(sizes_max[l + 1]) < sizes[:, l + 1, None]
        W = jnp.where(rows[:, :, None] & cols[:, None, :], W, 0.0)
        params.append({"W": W, "b": jnp.zeros((len(take), sizes_max[l + 1]), jnp.float32)})
    return params


def _init_states(spec: Spec, model: ModelConfig, member_sizes: tuple, layout: Layout, seeds,
                 momenta) -> tuple:
    """The stacked initial train states of a program's groups, in one compiled call: every
    model drawn at the widest sizes (``_init_params``), each group cut to its own sizes."""
    params = _init_params(model, member_sizes, layout.widest, np.concatenate(layout.takes), seeds)
    states, at = [], 0
    for take, sz in zip(layout.takes, layout.sizes):
        n = len(take)
        p = [{"W": l["W"][at:at + n, :sz[i], :sz[i + 1]], "b": l["b"][at:at + n, :sz[i + 1]]}
             for i, l in enumerate(params)]
        states.append(jax.vmap(lambda p, m: init_state(spec, p, momentum=m))(
            p, momenta[np.asarray(take)]))
        at += n
    return tuple(states)


@memo
def init_states_jit():
    # built on first use: choosing compiler options queries the backend, which must not
    # happen at import time (jax.distributed.initialize has to come first)
    return fast_jit(_init_states, static_argnums=(0, 1, 2, 3), once=True)


class Program(NamedTuple):
    """One compiled program's inputs; ``init()`` computes the stacked initial states (a tuple of
    groups, as ``layout``), whose shapes and placement ``abstract`` holds."""
    spec: Spec
    layout: Layout
    init: Any
    abstract: tuple
    hp: tuple
    data: dict
    mesh: Any
    seeds: list       # one per slot: the data order of its models


def _hparams(spec: Spec, model: ModelConfig, train: TrainConfig, members: list[dict],
             member_sizes: tuple, layout: Layout) -> tuple:
    """Per group, the stacked hyperparameters of its models (host arrays): each model's traced
    axes (``jaxmlp.sweeps.axes.train_for``); a padded program's models carry unit masks of
    their own widths."""
    group_of = layout.group_of()
    hps = []
    for i, (m, sizes) in enumerate(zip(members, member_sizes)):
        masks = None
        if spec.masked:
            wide = layout.sizes[group_of[i]]
            masks = [np.asarray(np.arange(wide[l + 1]) < sizes[l + 1], np.float32)
                     for l in range(len(sizes) - 2)]
        hps.append(make_hparams(train_for(train, m), spec, masks=masks,
                                layer_lr=layer_lr_multipliers(model, sizes), as_numpy=True))
    return tuple(jax.tree.map(lambda *xs: np.stack(xs), *[hps[i] for i in take])
                 for take in layout.takes)


def build_program(splits, model: ModelConfig, train: TrainConfig, members: list[dict],
                  member_sizes: tuple, layout: Layout, mesh, data_devices: int = 1) -> Program:
    """One program's inputs for ``members`` (same depth; ``member_sizes`` their layer sizes)
    placed as ``layout`` says, on ``mesh`` (``model_mesh``)."""
    momenta = np.asarray([effective_momentum(train.optimizer, float(m["momentum"])) for m in members],
                         np.float32)
    # one program for all: a momentum trace if any model has momentum
    use_momentum = uses_momentum(train.optimizer, float(momenta.max()), train.nesterov)
    spec = make_spec(model, train, task=splits.task,
                     n_train=n_rows(splits.X_train), has_val=n_rows(splits.X_val) > 0,
                     has_test=n_rows(splits.X_test) > 0,
                     masked=masked(layout, member_sizes),
                     use_momentum=use_momentum, use_l2=any(m["l2"] > 0 for m in members),
                     n_features=splits.n_features, mesh=mesh if data_devices > 1 else None,
                     n_orders=layout.n_slots)
    seeds = np.asarray([int(m["seed"]) for m in members], np.uint32)

    def init():
        static = (spec, model, member_sizes, layout)
        exe = aot_cache.load_or_compile(
            "sweep_init", (*static, signature((seeds, momenta)), compiler_options(once=True)),
            lambda: init_states_jit().lower(*static, seeds, momenta))
        return shard_models(exe(seeds, momenta), mesh)
    hp = shard_models(_hparams(spec, model, train, members, member_sizes, layout), mesh)
    if spec.mesh is None:  # 1-D: every device holds the whole data set for its models
        data = replicate(device_data(splits, spec), mesh)
    else:  # 2-D: every split on every device, each model's batch sharded over the data axis
        data = device_data(splits, spec)
    # the state's shapes and placement, without running the initialisation: enough to
    # compile the training chunk while the initialisation compiles (``sweep``)
    placed = rows_sharding(mesh, MODELS)
    abstract = []
    for take, sz in zip(layout.takes, layout.sizes):
        n = len(take)
        shapes = [{"W": jax.ShapeDtypeStruct((n, a, b), jnp.float32),
                   "b": jax.ShapeDtypeStruct((n, b), jnp.float32)} for a, b in zip(sz[:-1], sz[1:])]
        abstract.append(jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=placed),
            jax.eval_shape(jax.vmap(lambda p, m: init_state(spec, p, momentum=m)), shapes,
                           jax.ShapeDtypeStruct((n,), jnp.float32))))
    return Program(spec, layout, init, tuple(abstract), hp, data, mesh, layout.slot_seeds(members))


def short_run(prog: Program, train: TrainConfig) -> bool:
    """Whether ``prog``'s training chunk is compiled for a short run (``compiles_short``): its
    estimated training FLOPs, every model slot at its group's sizes, and the groups' sizes."""
    lay = prog.layout
    flops = sum(training_flops_estimate(sz, prog.spec.n_train, train.epochs, len(take))
                for sz, take in zip(lay.sizes, lay.takes))
    return compiles_short(flops, lay.sizes)


def compile_chunk(prog: Program, abstract: tuple, hp: tuple, executor=None,
                  short_run: bool = False):
    """``chunk_executable`` of ``prog``'s training chunk for states shaped like ``abstract`` (a
    tuple of groups); the executable (or the future of it) is wrapped by ``on_groups``."""
    one = (lambda t: t) if prog.layout.packed else (lambda t: t[0])
    return chunk_executable(prog.spec, one(abstract), one(hp), prog.data, prog.spec.chunk_epochs,
                          vmapped=prog.layout.vmapped, mesh=prog.mesh, executor=executor,
                          short_run=short_run)


def on_groups(layout: Layout, exe):
    """The compiled chunk as a function of tuples of groups (a padded program's chunk takes
    and returns its one group's state itself)."""
    if layout.packed:
        return exe

    def call(state, hp, *args):
        state, metrics = exe(state[0], hp[0], *args)
        return (state,), metrics
    return call


def metrics_executable(spec: Spec, abstract_state: tuple, hp: tuple, data):
    """The compiled program of every model's final train/val/test metrics (of the best params
    under early stopping), for group states shaped and placed like ``abstract_state``; it
    returns one metrics dict per group, each value ``(models of the group,)``."""
    per_group = jax.vmap(lambda p, h, d: split_metrics(spec, p, h, d), in_axes=(0, 0, None))
    fn = lambda ps, hs, d: tuple(per_group(p, h, d) for p, h in zip(ps, hs))
    params = tuple(best_params(spec, a) for a in abstract_state)
    key = (spec, signature(params), signature(hp), signature(data), compiler_options(once=True))
    return aot_cache.load_or_compile("sweep_metrics", key,
                                     lambda: fast_jit(fn, once=True).lower(params, hp, data))
