"""Compiled programs kept in this process, bounded, and dropped all at once by ``clear_caches``.

Every compiled XLA:CPU executable holds its machine code in memory maps of its own (several
per program), and Linux caps a process at ``vm.max_map_count`` maps (65,530 by default).
A process that keeps every program it ever compiled (a notebook running hundreds of differently
shaped fits and sweeps, or a long test session) eventually cannot map the next one and XLA
aborts in the middle of a compile. So jaxmlp's program caches keep the ``MAX_PROGRAMS`` most
recently used entries each (``Programs`` for executables, ``memo`` for the functions that
build jitted programs), and ``clear_caches`` empties them together with JAX's own caches.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

#: entries each cache keeps; a run needs a handful of programs, a sweep one or two per depth
MAX_PROGRAMS = 64

_CACHES: list = []  # everything ``clear_caches`` empties


class Programs:
    """A thread-safe mapping that keeps its ``maxsize`` most recently used entries (a
    background compile stores while the calling thread reads)."""

    def __init__(self, maxsize: int = MAX_PROGRAMS):
        self.maxsize = maxsize
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        _CACHES.append(self)

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def values(self) -> list:
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def cache_clear(self) -> None:
        with self._lock:
            self._items.clear()


def memo(fn):
    """``functools.lru_cache`` bounded to ``MAX_PROGRAMS`` entries, emptied by
    ``clear_caches``: for functions that build (jitted) programs from hashable settings."""
    cached = lru_cache(maxsize=MAX_PROGRAMS)(fn)
    _CACHES.append(cached)
    return cached


def clear_caches() -> None:
    """Drop every program jaxmlp and JAX keep in this process (the on-disk compile cache stays):
    their memory and memory maps are returned; later runs compile (or load) them again."""
    import jax
    for cache in _CACHES:
        cache.cache_clear()
    jax.clear_caches()
