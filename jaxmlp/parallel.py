"""Devices, meshes and shardings, and JAX's distributed runtime set-up.

jaxmlp never moves data between devices or hosts itself: it places arrays with
``jax.sharding`` and lets XLA insert the collectives (gradient all-reduce for data parallelism,
none for the model axis of a sweep). Across hosts it uses ``jax.distributed`` (gloo collectives
on CPU).

Meshes use ``AxisType.Auto`` axes so ``with_sharding_constraint`` can steer the partitioner.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from jaxmlp.errors import ConfigError

DATA = "data"
MODELS = "models"


def mesh_for(n_devices: int | None = None, axes: tuple[str, ...] = (DATA,),
             shape: tuple[int, ...] | None = None) -> Mesh:
    """A mesh over the first ``n_devices`` devices (default: all, across every process).

    ``shape`` splits the devices over several named ``axes`` (e.g. ``(2, 4)`` for
    ``("models", "data")``).
    """
    devs = jax.devices()
    n = len(devs) if n_devices is None else n_devices
    if n < 1 or n > len(devs):
        raise ConfigError(f"asked for {n} devices, {len(devs)} available")
    shape = shape or (n,)
    if int(np.prod(shape)) != n or len(shape) != len(axes):
        raise ConfigError(f"mesh shape {shape} does not fit {n} devices over axes {axes}")
    return jax.make_mesh(shape, axes, axis_types=(AxisType.Auto,) * len(axes), devices=devs[:n])


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def rows_sharding(mesh: Mesh, axis: str = DATA) -> NamedSharding:
    return NamedSharding(mesh, P(axis))


def put_global(x: np.ndarray, sharding: NamedSharding):
    """Place a host array that every process holds in full as a global array.

    Each process contributes only the rows its own devices hold
    (``make_array_from_process_local_data``), so the same code serves one and many hosts.
    """
    x = np.asarray(x)
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    spec = sharding.spec
    if len(spec) == 0 or spec[0] is None:
        return jax.make_array_from_process_local_data(sharding, x, x.shape)
    # rows of this process: the union of its devices' row blocks (contiguous by construction)
    idx = sharding.addressable_devices_indices_map(x.shape)
    starts = sorted({sl[0].start or 0 for sl in idx.values()})
    stops = sorted({sl[0].stop if sl[0].stop is not None else x.shape[0] for sl in idx.values()})
    local = x[starts[0]:stops[-1]]
    return jax.make_array_from_process_local_data(sharding, local, x.shape)


def to_host(tree):
    """Fetch arrays to numpy; across processes, gather the shards other hosts hold."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, jax.device_get(tree))
    from jax.experimental import multihost_utils
    local = lambda a: not isinstance(a, jax.Array) or a.is_fully_replicated  # host copies too
    return jax.tree.map(lambda a: np.asarray(a) if local(a)
                        else np.asarray(multihost_utils.process_allgather(a, tiled=True)), tree)


@dataclass(frozen=True)
class DistributedConfig:
    """Where the coordinator is and who this process is (all None: single process), or
    ``auto``: JAX's own cluster detection (Slurm, Open MPI, TPU pods, ...) says it.
    ``local_devices``: this process's device ids (default: JAX's choice, e.g. under Slurm one
    GPU per task)."""
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    peer_timeout_s: int = 60
    auto: bool = False
    local_devices: tuple[int, ...] | None = None

    @classmethod
    def from_env(cls, coordinator=None, num_processes=None, process_id=None, **kw):
        """Flags win; otherwise JAX's standard variables (JAX_COORDINATOR_ADDRESS,
        JAX_NUM_PROCESSES, JAX_PROCESS_ID)."""
        env = os.environ
        coordinator = coordinator or env.get("JAX_COORDINATOR_ADDRESS")
        num_processes = num_processes if num_processes is not None else _int_env("JAX_NUM_PROCESSES")
        process_id = process_id if process_id is not None else _int_env("JAX_PROCESS_ID")
        return cls(coordinator, num_processes, process_id, **kw)

    @property
    def enabled(self) -> bool:
        return self.auto or self.coordinator is not None or (self.num_processes or 1) > 1


def _int_env(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {v!r}") from None


#: How common launchers tell each task how many they started and which it is: (launcher,
#: task-count variable, task-index variable). Slurm's per-step count: a batch script's own
#: single command (SLURM_NTASKS may be larger) is one task.
LAUNCHERS = (("srun", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),
             ("mpirun (Open MPI)", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
             ("an MPI launcher (PMI)", "PMI_SIZE", "PMI_RANK"))


def launcher_tasks(env=None) -> tuple[str, int, int] | None:
    """``(launcher, task index, task count)`` when a launcher started several tasks of this
    command (``LAUNCHERS``), else None."""
    env = os.environ if env is None else env
    for name, count_var, index_var in LAUNCHERS:
        try:
            count, index = int(env.get(count_var, "1")), int(env.get(index_var, "0"))
        except ValueError:
            continue
        if count > 1:
            return name, index, count
    return None


def initialize(cfg: DistributedConfig) -> None:
    """Join the job through ``jax.distributed.initialize`` (before any other JAX call).

    On CPU the cross-process collectives are gloo's. A peer that stops sending heartbeats for
    ``peer_timeout_s + 30`` s makes the coordination service abort the others; before that, the
    training loop's ``Watchdog`` (``peer_timeout_s`` without progress) exits with a one-line error.
    """
    if not cfg.enabled:
        if cfg.process_id not in (None, 0):  # not silently a single-process run
            raise ConfigError(f"process id {cfg.process_id} given without a multi-process job "
                              "(--coordinator HOST:PORT and --num-processes N)")
        tasks = launcher_tasks()
        if tasks is not None:  # N lone "process 0" runs would all write the same folder
            name, index, count = tasks
            raise ConfigError(f"this is task {index} of {count} started by {name}, but no "
                              "multi-process job was asked for: each task would train alone "
                              "and write the same run folder; give --distributed auto (the "
                              "launcher's tasks form one job), or --coordinator, "
                              "--num-processes and --process-id, or start one task")
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's own initialisation timeout (300 s): peers may start minutes apart on a cluster
    kw = dict(heartbeat_timeout_seconds=int(cfg.peer_timeout_s) + 30,
              local_device_ids=list(cfg.local_devices) if cfg.local_devices else None)
    if cfg.auto:
        try:
            jax.distributed.initialize(**kw)
        except (ValueError, RuntimeError) as e:  # no cluster environment found, or unreachable
            why = str(e).splitlines()[0] if str(e) else "no cluster environment found"
            raise ConfigError(f"--distributed auto: no multi-process job could be formed here "
                              f"({why})") from None
        return
    if cfg.coordinator is None or cfg.num_processes is None or cfg.process_id is None:
        raise ConfigError("multi-process runs need --coordinator HOST:PORT, --num-processes N and "
                          "--process-id I (or JAX_COORDINATOR_ADDRESS/JAX_NUM_PROCESSES/JAX_PROCESS_ID)")
    if not (0 <= cfg.process_id < cfg.num_processes):
        raise ConfigError(f"process id {cfg.process_id} is not in [0, {cfg.num_processes})")
    host, _, port = cfg.coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"coordinator must be HOST:PORT, got {cfg.coordinator!r}")
    jax.distributed.initialize(coordinator_address=cfg.coordinator, num_processes=cfg.num_processes,
                               process_id=cfg.process_id, **kw)


def is_writer() -> bool:
    """Only process 0 writes run folders and checkpoints."""
    return jax.process_index() == 0


def peer_watchdog(timeout_s: float | None = None) -> "Watchdog":
    """A watchdog for multi-process runs (disabled with one process or ``timeout_s=0``)."""
    if jax.process_count() == 1 or timeout_s == 0:
        return Watchdog(None)
    return Watchdog(60.0 if timeout_s is None else float(timeout_s), "training (multi-process)")


class Watchdog:
    """Exit with a clear error if training makes no progress for ``timeout_s`` (e.g. a peer
    process died inside a collective and the runtime did not notice). ``kick()`` after every
    chunk; ``timeout_s=None`` disables it. The first ``kick()`` arms it: compiling the first
    program (minutes on a GPU with autotuning) never counts as no progress."""

    def __init__(self, timeout_s: float | None, what: str = "training"):
        self.timeout_s = timeout_s
        self.what = what
        self._last: float | None = None  # not armed yet
        self._stop = threading.Event()
        if timeout_s:
            threading.Thread(target=self._watch, daemon=True).start()

    def kick(self) -> None:
        self._last = time.monotonic()

    def close(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.timeout_s / 4)):
            last = self._last
            if last is not None and time.monotonic() - last > self.timeout_s:
                sys.stderr.write(f"error: {self.what} made no progress for {self.timeout_s:.0f}s; "
                                 "a peer process may have crashed or hung (raise the peer "
                                 "timeout if one chunk legitimately takes longer)\n")
                sys.stderr.flush()
                os._exit(3)
