"""Executables kept on disk under jaxmlp's own keys, so a repeated run skips tracing too.

JAX's persistent cache (``compile_cache``) is keyed by the lowered program, so every run still
traces and lowers its programs before it can look one up: ~0.15 s for the digits training
chunk, ~0.2 s with the initialisation, a fifth of a whole warm ``jaxmlp train``. jaxmlp knows
what determines its programs before tracing them: the static ``Spec``, the shapes, dtypes and
placements of the arguments, the compiler options, the JAX configuration that enters tracing,
the versions of jax/jaxlib/optax/numpy, the backend and its devices, and jaxmlp's own source
(a digest of the package's files). ``load_or_compile`` keys the serialised executable on all
of that, in a folder inside the compile cache (same privacy rules, on and off with it).

An entry that fails to load is deleted, reported as a warning and compiled again.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import threading
import time
import warnings
from pathlib import Path

import jax

from jaxmlp.training.compile_cache import source_digest
from jaxmlp.training.memo import Programs
from jaxmlp.timing import AOT_LOAD_EVENT, CACHE_HIT_EVENT

SUBFOLDER = "jaxmlp-aot"
MAX_BYTES = 256 * 2**20  # least recently used entries are deleted above this


def folder() -> Path | None:
    """Where entries go: inside JAX's compile cache folder when one is set, else None (off;
    also in multi-process jobs, whose programs JAX's own cache keeps)."""
    root = jax.config.jax_compilation_cache_dir
    return Path(root) / SUBFOLDER if root and jax.process_count() == 1 else None


def _environment() -> str:
    import jaxlib
    import numpy
    import optax
    from jax._src import config
    backend = jax.devices()[0].client
    devices = [(d.id, d.device_kind) for d in jax.devices()]
    # trace_context holds the configuration that enters tracing, and an empty axis
    # environment object whose repr carries its address: addresses are dropped
    env = (jax.__version__, jaxlib.__version__, optax.__version__, numpy.__version__,
           backend.platform, backend.platform_version, devices, jax.process_count(),
           config.trace_context(), source_digest())
    return re.sub(r" at 0x[0-9a-f]+", "", repr(env))


def entry_key(name: str, key) -> str:
    """The file name of program ``name`` with the static description ``key`` (its repr must
    say everything about the program that the environment does not)."""
    return f"{name}-{hashlib.sha256((repr(key) + _environment()).encode()).hexdigest()[:40]}"


def load(name: str, key):
    """The stored executable of program ``name`` for ``key``, or None (no folder, no entry,
    or an unreadable entry: deleted with a warning)."""
    where = folder()
    if where is None:
        return None
    t0 = time.perf_counter()
    path = where / f"{entry_key(name, key)}.pkl"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        from jax.experimental.serialize_executable import deserialize_and_load
        payload, in_tree, out_tree, device_ids = pickle.loads(data)
        by_id = {d.id: d for d in jax.devices()}
        compiled = deserialize_and_load(payload, in_tree, out_tree,
                                        execution_devices=[by_id[i] for i in device_ids])
    except Exception as e:  # noqa: BLE001 - any unreadable entry: compile it again
        path.unlink(missing_ok=True)
        warnings.warn(f"compiled program {path.name} unreadable ({type(e).__name__}); "
                      "deleted and compiled again", stacklevel=2)
        return None
    os.utime(path)  # recently used: evicted last
    jax.monitoring.record_event_duration_secs(AOT_LOAD_EVENT, time.perf_counter() - t0)
    return compiled


def store(name: str, key, compiled) -> None:
    """Keep ``compiled`` for later processes (atomically; the oldest entries go above
    ``MAX_BYTES``). A program that cannot be serialised, or a full disk, is simply not kept."""
    where = folder()
    if where is None:
        return
    try:
        from jax.experimental.serialize_executable import serialize
        # the devices it runs on, in order: loaded on all devices, a one-device program
        # would expect a shard per device
        devices = [d.id for d in compiled._executable.xla_executable.local_devices()]
        data = pickle.dumps((*serialize(compiled), devices))
    except Exception:  # noqa: BLE001 - not serialisable here: nothing to keep
        return
    from jaxmlp.atomic import atomic_write_bytes
    try:
        where.mkdir(mode=0o700, exist_ok=True)
        atomic_write_bytes(where / f"{entry_key(name, key)}.pkl", data)
        _evict(where)
    except OSError:
        pass


def _evict(where: Path) -> None:
    entries = sorted(where.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in entries)
    for p in entries:
        if total <= MAX_BYTES:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)


_MEMORY = Programs()
_HITS = threading.local()  # per thread: JAX persistent-cache hits seen (compiles run in threads)


def _count_hit(event: str, **_kw) -> None:
    if event == CACHE_HIT_EVENT:
        _HITS.n = getattr(_HITS, "n", 0) + 1


jax.monitoring.register_event_listener(_count_hit)


def compile_and_store(name: str, key, lowered):
    """``lowered.compile()``, kept for later processes only when XLA compiled it here: an
    executable that JAX loaded from its own cache does not serialise again completely on
    XLA:CPU (its kernels are missing when the copy is loaded), so it is not stored."""
    before = getattr(_HITS, "n", 0)
    compiled = lowered.compile()
    if getattr(_HITS, "n", 0) == before:
        store(name, key, compiled)
    return compiled


def load_or_compile(name: str, key, lower):
    """The compiled program ``name`` for ``key``: from this process's memory, else loaded from
    disk when an earlier process stored it, else ``lower().compile()`` (then stored). ``lower``
    is only called on a miss, so a hit traces nothing."""
    mem = entry_key(name, key)  # the environment too: e.g. a jax.enable_x64 block
    compiled = _MEMORY.get(mem)
    if compiled is None:
        compiled = load(name, key)
        if compiled is None:
            compiled = compile_and_store(name, key, lower())
        _MEMORY.put(mem, compiled)
    return compiled
