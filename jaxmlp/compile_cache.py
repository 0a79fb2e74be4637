"""Compiled programs kept on disk between runs: JAX's persistent compilation cache.

A repeated experiment (the same shapes and settings, other seeds, learning rates or epochs)
then loads its programs instead of compiling them: W3's 64-model sweep spends 0.3 instead of
0.74 s before it runs (BENCHMARKS.md). Entries are keyed by the program, the compiler options
and the jax/jaxlib versions; a stale or unreadable entry is compiled again by JAX.
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

from .errors import ConfigError


def use_compile_cache(path: str | os.PathLike) -> Path:
    """Cache every program compiled from now on in the folder ``path`` (created if missing),
    whatever its size or compile time (jaxmlp's programs compile in well under JAX's 1 s
    default threshold). Call before the first compile. Returns the folder."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"compile cache {folder}: cannot create it ({e.strerror or e})") from None
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ConfigError(f"compile cache {folder}: not a writable folder")
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
