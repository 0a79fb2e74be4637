"""Sweeps: many models trained together in one compiled program.

Every model of a grid gets its own init seed, data-order seed, learning rate, temperature, L2
strength and momentum as traced arrays; the train state is stacked along a leading model axis
and the training chunk of ``jaxmlp.train`` is ``vmap``-ed over it, so a grid that differs only
in these values compiles once. Hidden widths are mixed by padding to the widest model with
per-model unit masks (each padded model is exactly its narrow self: padded weights start at zero
and receive exactly zero gradient), or, where widths differ by more than ``max_pad_ratio``, by
grouping widths into buckets that each get their own program. The model axis is sharded over
the local devices.
"""
from __future__ import annotations

import itertools
import os
from functools import lru_cache, partial
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .config import ModelConfig, TrainConfig
from .errors import ConfigError
from .nn import init_stds, mup_multipliers, standard_normals, weight_counts
from .checkpoint import restore_state
from .parallel import DATA, MODELS, mesh_for, rows_sharding, to_host
from .train import (Spec, _size, fast_jit, as_splits, best_params, device_data, effective_momentum,
                    get_executable,
                    init_model, init_state, layer_lr_multipliers, make_hparams, make_spec,
                    model_sizes, init_key, split_metrics_jit, chunk_orders, _models_input,
                    host_input)

GRID_AXES = ("width", "lr", "temperature", "l2", "momentum", "seed")


@dataclass
class SweepResult:
    """A sweep's outcome.

    Attributes:
        rows: one dict per model: hyperparameters, final/best metrics, epochs_run, diverged,
            wall_s (the wall time of the program the model was trained in), program index.
        histories: metric name -> (n_models, epochs) array, NaN where a model did not run.
        info: strategy, buckets, compile and run seconds, devices, number of programs.
    """
    rows: list[dict]
    histories: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)
    programs: list = field(default_factory=list, repr=False)   # (spec, final stacked state)
    where: list = field(default_factory=list, repr=False)      # per model: (program, slot, sizes)

    def column(self, key: str) -> np.ndarray:
        return np.asarray([r[key] for r in self.rows])

    def params(self, i: int, *, padded: bool = False) -> list:
        """Trained params of model ``i`` (best under early stopping), unpadded unless asked."""
        prog, slot, sizes = self.where[i]
        spec, state = self.programs[prog]
        p = jax.tree.map(lambda a: a[slot], to_host(best_params(spec, state)))
        return p if padded else unpad_params(p, sizes)


def expand_grid(grid: dict[str, Sequence], seeds: int | Sequence[int] = 1,
                base: TrainConfig | None = None, model: ModelConfig | None = None) -> list[dict]:
    """The Cartesian product of ``grid`` (axes: width, lr, temperature, l2, momentum) and seeds,
    as a list of per-model hyperparameter dicts (axes not in the grid take ``base``'s values)."""
    base = base or TrainConfig()
    model = model or ModelConfig()
    unknown = sorted(set(grid) - set(GRID_AXES))
    if unknown:
        raise ConfigError(f"unknown sweep axis {', '.join(unknown)}; use {', '.join(GRID_AXES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if "seed" in grid:
        seed_list = list(grid["seed"])
    if not seed_list:
        raise ConfigError("a sweep needs at least one seed")
    width_default = model.hidden[-1] if model.hidden else None
    axes = {
        "width": list(grid.get("width", [width_default])),
        "lr": list(grid.get("lr", [base.lr])),
        "temperature": list(grid.get("temperature", [base.temperature])),
        "l2": list(grid.get("l2", [base.l2])),
        "momentum": list(grid.get("momentum", [base.momentum])),
        "seed": seed_list,
    }
    for k, v in axes.items():
        if not v:
            raise ConfigError(f"sweep axis {k} is empty")
    if axes["width"] != [None] and not model.hidden:
        raise ConfigError("a width sweep needs a model with hidden layers (--hidden)")
    rows = []
    for combo in itertools.product(*axes.values()):
        hp = dict(zip(axes, combo))
        # validate each model's values through the config types
        TrainConfig(**{**base.to_dict(), "lr": float(hp["lr"]), "temperature": float(hp["temperature"]),
                       "l2": float(hp["l2"]), "momentum": float(hp["momentum"]), "seed": int(hp["seed"])}
                    | {"step_gamma": base.step_gamma})
        if hp["width"] is not None and (not isinstance(hp["width"], (int, np.integer)) or hp["width"] < 1):
            raise ConfigError(f"widths must be positive integers, got {hp['width']!r}")
        rows.append(hp)
    return rows


def width_buckets(widths: Sequence[int], max_pad_ratio: float) -> list[list[int]]:
    """Group distinct widths so that within a bucket max/min <= max_pad_ratio (greedy, sorted)."""
    buckets: list[list[int]] = []
    for w in sorted(set(widths)):
        if buckets and w / buckets[-1][0] <= max_pad_ratio:
            buckets[-1].append(w)
        else:
            buckets.append([w])
    return buckets


def _hidden_for(model: ModelConfig, width) -> tuple[int, ...]:
    return tuple(model.hidden) if width is None else tuple(width for _ in model.hidden)


def unpad_params(params: list, sizes: Sequence[int]) -> list:
    """The narrow model inside a padded one."""
    return [{"W": layer["W"][:sizes[l], :sizes[l + 1]], "b": layer["b"][:sizes[l + 1]]}
            for l, layer in enumerate(params)]


def _pad_to(a, shape):
    """Zero-pad the trailing axes of a stacked (N, ...) array to ``shape``."""
    return jnp.pad(a, [(0, 0)] + [(0, t - s) for s, t in zip(a.shape[1:], shape)])


def _init_states(spec: Spec, model: ModelConfig, member_sizes: tuple, sizes_max: tuple,
                 take: tuple, seeds, momenta):
    """Stacked initial train states of all models of a program, in one compiled call.

    Each model is initialised exactly as ``jaxmlp.fit`` would (its own sizes and seed), then
    zero-padded to ``sizes_max``; ``take`` orders (and repeats, for device padding) the models.
    The draws are nested across widths (``jaxmlp.nn.standard_normals``), so one draw at the
    widest shape per model, scaled by the model's own init std and cut to its sizes, is its
    initialisation: one random-number program whatever the widths. (Without JAX's
    partitionable threefry the draws do not nest; then every distinct size draws its own.)
    """
    keys = jax.vmap(init_key)(seeds)
    take = np.asarray(take)
    if jax.config.jax_threefry_partitionable:
        Z = jax.vmap(lambda k: standard_normals(k, sizes_max))(keys[take])
        sizes = np.asarray([member_sizes[t] for t in take])                 # (models, L + 1)
        # per model and layer, as init_model: W = (std * Z) * muP multiplier
        stds = np.asarray([init_stds(sz, init=model.init, activation=model.activation)
                           for sz in sizes], np.float32)
        mults = (np.asarray([mup_multipliers(sz, model.base_width)[0] for sz in sizes], np.float32)
                 if model.parametrization == "mup" else None)
        params = []
        for l, z in enumerate(Z):
            W = stds[:, l, None, None] * z
            if mults is not None:
                W = W * mults[:, l, None, None]
            rows = np.arange(sizes_max[l]) < sizes[:, l, None]
            cols = np.arange(sizes_max[l + 1]) < sizes[:, l + 1, None]
            W = jnp.where(rows[:, :, None] & cols[:, None, :], W, 0.0)
            params.append({"W": W, "b": jnp.zeros((len(take), sizes_max[l + 1]), jnp.float32)})
    else:
        parts, order = [], []
        for sizes in dict.fromkeys(member_sizes):
            ids = [i for i, sz in enumerate(member_sizes) if sz == sizes]
            p = jax.vmap(lambda k: init_model(k, model, list(sizes)))(keys[np.asarray(ids)])
            p = [{"W": _pad_to(l["W"], (sizes_max[k], sizes_max[k + 1])),
                  "b": _pad_to(l["b"], (sizes_max[k + 1],))} for k, l in enumerate(p)]
            parts.append(p)
            order += ids
        pos = np.argsort(np.asarray(order))[take]
        params = jax.tree.map(lambda *xs: jnp.concatenate(xs)[pos], *parts)
    return jax.vmap(lambda p, m: init_state(spec, p, momentum=m))(params, momenta[take])


@lru_cache(maxsize=None)
def _init_states_jit():
    # built on first use: choosing compiler options queries the backend, which must not
    # happen at import time (jax.distributed.initialize has to come first)
    return fast_jit(_init_states, static_argnums=(0, 1, 2, 3, 4), once=True)


def _model_mesh(n_devices: int | None, data_devices: int = 1):
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


def _shard_models(tree, mesh):
    """Host arrays with a leading model axis, split over the mesh's model axis."""
    return jax.tree.map(lambda a: _models_input(mesh, np.asarray(a)), tree)


def _replicate(tree, mesh):
    """Host arrays every process holds, replicated over the mesh."""
    return jax.tree.map(lambda a: host_input(mesh, a), tree)


def _program(splits, model: ModelConfig, train: TrainConfig, members: list[dict],
             n_devices: int | None, masked: bool, data_devices: int = 1):
    """Build one vmapped program's inputs for ``members`` (same depth, padded widths)."""
    mesh, n_dev = _model_mesh(n_devices, data_devices)
    widths = [m["width"] for m in members]
    w_max = None if widths[0] is None else max(widths)
    n_out = splits.n_outputs
    sizes_max = model_sizes(model.replace(hidden=_hidden_for(model, w_max)), splits.n_features, n_out)
    use_momentum = train.optimizer in ("momentum", "nesterov") or train.nesterov or any(
        m["momentum"] > 0 for m in members)
    spec = make_spec(model.replace(hidden=_hidden_for(model, w_max)), train, task=splits.task,
                     n_train=_size(splits.X_train), has_val=_size(splits.X_val) > 0,
                     has_test=_size(splits.X_test) > 0, masked=masked, use_momentum=use_momentum,
                     use_l2=any(m["l2"] > 0 for m in members), n_features=splits.n_features,
                     mesh=mesh if data_devices > 1 else None)
    n_real = len(members)
    share = _order_share(members, n_dev, data_devices)
    n_pad = (-n_real) % n_dev  # repeat the last model so the model axis divides the devices
    take = tuple(list(range(n_real)) + [n_real - 1] * n_pad)
    member_sizes = tuple(tuple(model_sizes(model.replace(hidden=_hidden_for(model, m["width"])),
                                           splits.n_features, n_out)) for m in members)
    momenta = np.asarray([effective_momentum(train.optimizer, float(m["momentum"])) for m in members],
                         np.float32)

    def init():
        states = _init_states_jit()(spec, model, member_sizes, tuple(sizes_max), take,
                                    np.asarray([int(m["seed"]) for m in members], np.uint32), momenta)
        return _shard_models(states, mesh)
    hps = []
    for m in members:
        sizes = model_sizes(model.replace(hidden=_hidden_for(model, m["width"])), splits.n_features, n_out)
        masks = None
        if masked:
            masks = [np.asarray(np.arange(sizes_max[l + 1]) < sizes[l + 1], np.float32)
                     for l in range(len(sizes) - 2)]
        tc = train.replace(lr=float(m["lr"]), temperature=float(m["temperature"]), l2=float(m["l2"]),
                           momentum=float(m["momentum"]), seed=int(m["seed"]))
        hps.append(make_hparams(tc, spec, masks=masks, layer_lr=layer_lr_multipliers(model, sizes),
                                as_numpy=True))
    hp = _shard_models(jax.tree.map(lambda *xs: np.stack(xs)[list(take)], *hps), mesh)
    if spec.mesh is None:  # 1-D: every device holds the whole data set for its models
        data = _replicate(device_data(splits, spec), mesh)
    else:  # 2-D: training rows split over the data axis, each model's batch sharded over it
        data = device_data(splits, spec)
    seeds = [int(members[i]["seed"]) for i in take][::share]
    # the state's shapes and placement, without running the initialisation: enough to
    # compile the training chunk while the initialisation compiles (``sweep``)
    n = len(take)
    shapes = [{"W": jax.ShapeDtypeStruct((n, a, b), jnp.float32),
               "b": jax.ShapeDtypeStruct((n, b), jnp.float32)}
              for a, b in zip(sizes_max[:-1], sizes_max[1:])]
    placed = rows_sharding(mesh, MODELS)
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=placed),
        jax.eval_shape(jax.vmap(lambda p, m: init_state(spec, p, momentum=m)), shapes,
                       jax.ShapeDtypeStruct((n,), jnp.float32)))
    return Program(spec, init, abstract, hp, data, n_real, sizes_max, mesh, seeds, share)


class Program(NamedTuple):
    """One compiled program's inputs; ``init()`` computes the stacked initial states, whose
    shapes and placement ``abstract`` holds."""
    spec: Spec
    init: Any
    abstract: dict
    hp: dict
    data: dict
    n_real: int
    sizes_max: list
    mesh: Any
    seeds: list
    share: int


# A program's estimated training FLOPs up to which ``sweep`` compiles it for a short run. The
# chunk compiles ~0.35-0.5 s faster whatever the program; its steps run 0-20% slower (least
# with one hidden layer; sigmoid and two layers most). Four sweeps of 1.4e11-2.3e11 FLOPs
# (2.4-3.8 s each on this 2-core CPU) gained 0.04-0.28 s (`scripts/profile_sweep.py
# --short-run`, BENCHMARKS.md); a deep sigmoid sweep near this bound would lose ~0.4 s.
SHORT_RUN_FLOPS = 3e11


def training_flops_estimate(sizes: Sequence[int], n_train: int, epochs: int,
                            n_models: int) -> float:
    """Matmul FLOPs of training ``n_models`` models of layer sizes ``sizes`` for ``epochs``
    epochs of ``n_train`` examples: 6 per weight per example (forward, input and weight
    gradients)."""
    return 6.0 * sum(weight_counts(sizes)) * n_train * epochs * n_models


def short_run(prog: "Program", train: TrainConfig) -> bool:
    """Whether ``prog``'s training chunk is compiled for a short run: its estimated training
    FLOPs, every model slot at the padded sizes, at most ``SHORT_RUN_FLOPS``."""
    n_slots = jax.tree.leaves(prog.abstract)[0].shape[0]
    flops = training_flops_estimate(prog.sizes_max, prog.spec.n_train, train.epochs, n_slots)
    return flops <= SHORT_RUN_FLOPS


def _order_share(members: list[dict], n_dev: int, data_devices: int) -> int:
    """How many consecutive models of a program share one data order.

    Models with the same seed train on the same batches. When ``members`` come in equal runs
    of one seed (``sweep`` puts the seed axis outermost), each run is split into as few
    groups as lets the groups divide over the devices (``compiled_chunk``); otherwise 1
    (every model gets its own order, the model axis padded to the devices).
    """
    seeds = [int(m["seed"]) for m in members]
    runs = [len(list(g)) for _, g in itertools.groupby(seeds)]
    k = runs[0]
    if data_devices > 1 or any(r != k for r in runs) or len(set(seeds)) != len(runs):
        return 1
    return next((s for s in range(k, 1, -1) if k % s == 0 and (len(runs) * k // s) % n_dev == 0), 1)


# At most this many streams (``_streams``): two were measured (on 2 cores); many small parts
# would each lose the batching of the models into wide products.
MAX_STREAMS = 2


def _streams(prog: "Program") -> int:
    """How many concurrent executions a program's model axis is split into on one CPU device.

    XLA:CPU leaves part of a 2-core machine idle during a sweep step; two executions of the
    same executable on halves of the models, from two threads, fill it (the run 1.2x faster,
    about what one host device per core gives, without the ``XLA_FLAGS`` that must be set
    before JAX starts). One per core up to ``MAX_STREAMS``, as many as divide the groups of
    models sharing an order.
    """
    if prog.mesh.size != 1 or prog.spec.mesh is not None or jax.default_backend() != "cpu":
        return 1
    groups = jax.tree.leaves(prog.abstract)[0].shape[0] // prog.share
    most = min(os.cpu_count() or 1, groups, MAX_STREAMS)
    return next(s for s in range(most, 0, -1) if groups % s == 0)


def _split(tree, parts: int) -> list:
    """A host pytree with a leading model axis cut into ``parts`` equal consecutive pieces."""
    leaves, treedef = jax.tree.flatten(tree)
    pieces = [np.split(np.asarray(a), parts) for a in leaves]
    return [jax.tree.unflatten(treedef, [p[i] for p in pieces]) for i in range(parts)]


def _concat(trees: list):
    """Host pytrees with a leading model axis joined along it (``_split`` undone)."""
    return jax.tree.map(lambda *xs: np.concatenate(xs), *trees)


def _part_abstract(abstract, parts: int):
    """The shapes and placement of one of ``parts`` equal parts of an abstract state."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((a.shape[0] // parts, *a.shape[1:]),
                                                       a.dtype, sharding=a.sharding), abstract)


def _run_program(spec, state, hps: list, data, mesh, seeds: list[int], epochs: int,
                 progress=None, start_epoch: int = 0, chunks: list | None = None, on_chunk=None,
                 share: int = 1, compiling=None):
    """Drive one program's compiled chunks (cached per program shape like single runs);
    ``seeds`` (one per group of ``share`` consecutive model slots) set the data orders. A
    resumed program passes the epoch it reached and its metric chunks so far;
    ``on_chunk(epoch, state, chunks)`` runs on the host after every chunk (checkpointing,
    signals). ``compiling``: a future of ``get_executable``'s result, when the chunk is already
    being compiled. ``hps``: the hyperparameters of each stream (``_streams``): with more than
    one (one device), the models are cut into as many consecutive parts, each run by the same
    executable in its own thread; the state handed to ``on_chunk`` and returned is whole."""
    C = spec.chunk_epochs
    streams = len(hps)
    chunks = list(chunks or [])
    epoch = start_epoch
    done = lambda st: bool(np.all(np.logical_or(*to_host((st["stopped"], st["diverged"])))))
    compile_s, t0 = 0.0, time.perf_counter()
    if epoch < epochs and not done(state):
        parts = [state] if streams == 1 else [_shard_models(p, mesh)
                                              for p in _split(to_host(state), streams)]
        whole = lambda: parts[0] if streams == 1 else _concat([to_host(p) for p in parts])
        per = len(seeds) // streams
        part_seeds = [seeds[i * per:(i + 1) * per] for i in range(streams)]
        exe, compile_s = (compiling.result() if compiling is not None else
                          get_executable(spec, parts[0], hps[0], data, C, vmapped=share, mesh=mesh))
        t0 = time.perf_counter()

        def run_part(i, ep):
            orders = np.stack([chunk_orders(spec, sd, ep, epochs) for sd in part_seeds[i]])
            st, metrics = exe(parts[i], hps[i], data, *_replicate((ep, ep < epochs), mesh),
                              _models_input(mesh, orders))
            return st, to_host(metrics)  # one host sync per chunk
        pool = ThreadPoolExecutor(max_workers=streams) if streams > 1 else None
        try:
            while epoch < epochs:
                ep = np.arange(epoch, epoch + C, dtype=np.int32)
                if pool is None:
                    out = [run_part(0, ep)]
                else:
                    out = list(pool.map(run_part, range(streams), [ep] * streams))
                parts = [st for st, _ in out]
                chunks.append(_concat([m for _, m in out]))
                epoch += C
                if progress is not None:
                    progress(min(epoch, epochs))
                if on_chunk is not None:
                    on_chunk(min(epoch, epochs), whole(), chunks)
                if all(done(p) for p in parts):
                    break
        finally:
            if pool is not None:
                pool.shutdown()
        state = parts[0] if streams == 1 else _shard_models(whole(), mesh)
    jax.block_until_ready(state["params"])
    run_s = time.perf_counter() - t0
    hist = {k: np.concatenate([c[k] for c in chunks], axis=1)[:, :epochs] for k in chunks[0]}
    return state, hist, compile_s, run_s


def sweep(data, *, model: ModelConfig | None = None, train: TrainConfig | None = None,
          grid: dict[str, Sequence] | None = None, seeds: int | Sequence[int] = 1,
          max_pad_ratio: float = 8.0, n_devices: int | None = None, data_devices: int = 1,
          fast_compile: bool | None = None, progress=None,
          on_chunk=None, resume: dict | None = None) -> SweepResult:
    """Train every model of a grid, as few compiled programs as the widths allow.

    Args:
        data: ``jaxmlp.data.Splits`` or arrays (see ``jaxmlp.train.as_splits``).
        model: base model; ``grid["width"]`` replaces the size of every hidden layer.
        train: base training config (epochs, batch size, optimizer, schedule, patience, ...).
        grid: axis -> values for "width", "lr", "temperature", "l2", "momentum" (and "seed").
        seeds: number of seeds (0..seeds-1) or a list; each seed sets init and data order
            exactly as ``jaxmlp.fit`` with ``TrainConfig(seed=...)`` does.
        max_pad_ratio: widths whose ratio is at most this share one padded program; 1 means
            one program per width ("group"), ``inf`` one program for all ("pad").
        n_devices: shard the model axis over this many devices (default: all).
        data_devices: with > 1, a 2-D ("models", "data") mesh: each model's mini-batches are
            split over this many devices (data parallelism inside every model, for large models),
            the models over ``n_devices / data_devices`` groups.
        fast_compile: compile the training programs for a short run (on CPU without XLA's
            fusion emitters: ~0.4 s less compile, up to ~20% slower steps); ``None`` decides
            per program from its estimated work (``short_run``).
        progress: optional ``callable(epochs_done_in_program, program_index, n_programs)``.
        on_chunk: optional ``callable(snapshot)`` after every compiled chunk, with
            ``snapshot = {"programs": [{"state", "epoch", "chunks", "compile_s", "run_s"}, ...]}``
            for the programs started so far (host arrays): what a checkpoint needs.
        resume: a snapshot as ``on_chunk`` gave it (states as lists of leaves): finished programs
            are not run again, the current one continues from its epoch, bit-identically.

    Returns:
        A ``SweepResult`` with one row per model in grid order.
    """
    model = model or ModelConfig()
    train = train or TrainConfig()
    splits = as_splits(data, train.loss)
    members = expand_grid(grid or {}, seeds, train, model)
    widths = [m["width"] for m in members]
    if widths[0] is None:
        buckets = [[None]]
    else:
        buckets = width_buckets(widths, max_pad_ratio)
    strategy = "single" if len(buckets) == 1 and len(set(widths)) == 1 else (
        "pad" if len(buckets) == 1 else ("group" if all(len(b) == 1 for b in buckets) else "bucket"))
    rows: list[dict | None] = [None] * len(members)
    histories: dict[str, np.ndarray] = {}
    info = {"strategy": strategy, "buckets": buckets, "programs": [], "n_models": len(members)}
    programs: list = []
    where: list = [None] * len(members)
    t_all = time.perf_counter()
    snapshot: dict = {"programs": []}
    saved = (resume or {}).get("programs", [])
    seed_rank = {sd: r for r, sd in enumerate(dict.fromkeys(m["seed"] for m in members))}
    for b_i, bucket in enumerate(buckets):
        # models of one seed side by side: they share their batches (see _order_share)
        idx = sorted((i for i, m in enumerate(members) if m["width"] in bucket),
                     key=lambda i: seed_rank[members[i]["seed"]])
        group = [members[i] for i in idx]
        masked = len(bucket) > 1
        prog = _program(splits, model, train, group, n_devices, masked, data_devices)
        spec, hp, dev_data, mesh, share = prog.spec, prog.hp, prog.data, prog.mesh, prog.share
        n_real, sizes_max = prog.n_real, prog.sizes_max
        start = saved[b_i]["epoch"] if b_i < len(saved) else 0
        # Trace the training chunk here, then compile it in a background thread while this
        # one traces, compiles and runs the initialisation (XLA compiles release the GIL; on
        # 2 cores this hides most of the smaller compiles).
        compiling, short = None, False
        streams = _streams(prog)
        hps = [hp] if streams == 1 else [_shard_models(p, mesh)
                                         for p in _split(to_host(hp), streams)]
        if start < train.epochs:
            short = short_run(prog, train) if fast_compile is None else bool(fast_compile)
            abstract = prog.abstract if streams == 1 else _part_abstract(prog.abstract, streams)
            compiling = get_executable(spec, abstract, hps[0], dev_data, spec.chunk_epochs,
                                       vmapped=share, mesh=mesh, executor=_COMPILER,
                                       short_run=short)
        # queued behind the chunk: compiles while the chunk runs
        metrics_exe = _COMPILER.submit(_metrics_executable, spec, prog.abstract, hp, dev_data)
        state = prog.init()
        chunks, prior_s = [], (0.0, 0.0)
        if b_i < len(saved):  # resume: the saved state of this program, its epoch and metrics
            state = _shard_models(restore_state(to_host(state), saved[b_i]["state"]), mesh)
            chunks = saved[b_i]["chunks"]
            prior_s = (saved[b_i]["compile_s"], saved[b_i]["run_s"])
        entry = {"epoch": start, "chunks": chunks, "compile_s": prior_s[0], "run_s": prior_s[1]}
        snapshot["programs"].append(entry)
        t_prog = time.perf_counter()

        def chunk_done(epoch, st, chs, entry=entry, t_prog=t_prog):
            entry.update(epoch=epoch, chunks=chs, state=to_host(st),
                         run_s=prior_s[1] + time.perf_counter() - t_prog)
            if on_chunk is not None:
                on_chunk(snapshot)
        cb = None if progress is None else (lambda e, b=b_i: progress(e, b, len(buckets)))
        state, hist, compile_s, run_s = _run_program(spec, state, hps, dev_data, mesh, prog.seeds,
                                                     train.epochs, cb, start_epoch=start,
                                                     chunks=chunks, on_chunk=chunk_done,
                                                     share=share, compiling=compiling)
        compile_s, run_s = compile_s + prior_s[0], run_s + prior_s[1]
        entry.update(state=to_host(state), compile_s=compile_s, run_s=run_s, epoch=train.epochs)
        info["programs"].append({"widths": bucket, "n_models": n_real, "padded_to": sizes_max[1:-1],
                                 "models_per_order": share, "short_run": short, "streams": streams,
                                 "compile_s": compile_s, "run_s": run_s, "devices": mesh.size})
        final = to_host(metrics_exe.result()(best_params(spec, state), hp, dev_data))
        host_state = to_host({k: state[k] for k in ("epoch", "stopped", "diverged", "diverged_step",
                                                   "best_loss", "best_epoch")})
        ran = hist.pop("ran")
        E = train.epochs
        for k, v in hist.items():
            arr = np.where(ran, v, np.nan)
            histories.setdefault(k, np.full((len(members), E), np.nan))
            full = np.full((v.shape[0], E), np.nan)
            full[:, :arr.shape[1]] = arr
            histories[k][idx] = full[:n_real]
        for j, i in enumerate(idx):
            m = members[i]
            row = {"model": i, "width": m["width"], "lr": m["lr"], "temperature": m["temperature"],
                   "l2": m["l2"], "momentum": m["momentum"], "seed": m["seed"]}
            for k, v in final.items():
                row[k] = float(v[j])
            hv = histories.get("val_loss", histories["train_loss"])[i]
            row["best_val_loss"] = float(np.nanmin(hv)) if np.isfinite(hv).any() else float("nan")
            row["best_epoch"] = int(host_state["best_epoch"][j]) + 1
            row["epochs_run"] = int(host_state["epoch"][j])
            row["stopped_early"] = bool(host_state["stopped"][j])
            row["diverged"] = bool(host_state["diverged"][j])
            row["diverged_step"] = int(host_state["diverged_step"][j])
            row["program"] = b_i
            row["wall_s"] = compile_s + run_s
            rows[i] = row
        programs.append((spec, state))
        for j, i in enumerate(idx):
            where[i] = (b_i, j, model_sizes(model.replace(hidden=_hidden_for(model, members[i]["width"])),
                                            splits.n_features, splits.n_outputs))
    info["snapshot"] = snapshot["programs"]  # final states: what a sweep checkpoint saves
    info["total_s"] = time.perf_counter() - t_all
    info["compile_s"] = sum(p["compile_s"] for p in info["programs"])
    info["run_s"] = sum(p["run_s"] for p in info["programs"])
    return SweepResult(rows=rows, histories=histories, info=info, programs=programs, where=where)


def _metrics_executable(spec: Spec, abstract_state, hp, data):
    """The compiled program of every model's final train/val/test metrics (of the best params
    under early stopping), for states shaped and placed like ``abstract_state``."""
    return split_metrics_jit(spec, vmapped=True).lower(best_params(spec, abstract_state), hp,
                                                       data).compile()


_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmlp-compile")
