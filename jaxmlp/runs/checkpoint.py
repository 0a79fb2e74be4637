"""Atomic, checksummed checkpoints of a train state (params + optimizer state + RNG + counters)
together with the run's config and history.

Format: one ``.npz`` holding the state's leaves in ``jax.tree`` order (``leaf_00000`` ...) and a
``meta`` JSON string (format version, config, epoch, history, SHA-256 of the leaves). Writing
goes to a temporary file in the same folder, is fsync'ed, then renamed over the target, so a
crash leaves either the old or the new file, never a torn one. The previous checkpoint is kept
as ``*.prev.npz`` and used when the newest one is unreadable.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmlp.atomic import atomic_write_bytes
from jaxmlp.errors import CheckpointError
from jaxmlp.training.init import restore_leaves

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"


def _digest(leaves: list[np.ndarray], meta_wo_digest: str) -> str:
    h = hashlib.sha256()
    for a in leaves:
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(meta_wo_digest.encode())
    return h.hexdigest()


def save_checkpoint(path, state: Any, *, config: dict, epoch: int, history: dict | None = None,
                    extra: dict | None = None, keep_previous: bool = True) -> None:
    """Save ``state`` (any pytree of arrays) atomically with its config and history."""
    path = Path(path)
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    meta = {"format": FORMAT_VERSION, "config": config, "epoch": int(epoch),
            "history": history or {}, "extra": extra or {}, "n_leaves": len(leaves)}
    body = json.dumps(meta, sort_keys=True)
    meta["sha256"] = _digest(leaves, body)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta, sort_keys=True)),
             **{f"leaf_{i:05d}": a for i, a in enumerate(leaves)})

    def keep():
        # The new file is complete on disk before the old one moves aside; a crash between the
        # two renames leaves only *.prev.npz, which load_checkpoint falls back to.
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))

    atomic_write_bytes(path, buf.getvalue(), before_replace=keep)


def previous_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name[:-4] + ".prev.npz" if path.name.endswith(".npz") else path.name + ".prev")


def has_checkpoint(path) -> bool:
    """A checkpoint, or the one before it, exists at ``path`` (a run stopped before its first
    checkpoint has neither)."""
    return Path(path).exists() or previous_path(path).exists()


def read_checkpoint(path) -> tuple[list[np.ndarray], dict]:
    """Read and verify one checkpoint file: ``(leaves, meta)``; raises ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict):
                raise TypeError("meta is not a mapping")
            leaves = [z[f"leaf_{i:05d}"] for i in range(int(meta["n_leaves"]))]
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, TypeError, IndexError,
            AttributeError, RuntimeError, OverflowError, MemoryError, zlib.error) as e:
        raise CheckpointError(f"checkpoint {path} is corrupted or truncated ({type(e).__name__})") from None
    digest = meta.pop("sha256", None)
    if digest != _digest(leaves, json.dumps(meta, sort_keys=True)):
        raise CheckpointError(f"checkpoint {path} failed its checksum (corrupted)")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has unsupported format {meta.get('format')!r}")
    for key in ("config", "epoch", "history", "extra"):
        if key not in meta:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}")
    meta["sha256"] = digest
    return leaves, meta


def load_checkpoint(path, *, fallback: bool = True) -> tuple[list[np.ndarray], dict]:
    """Like ``read_checkpoint`` but falls back to the previous good checkpoint (with a warning)
    when the newest one is missing or corrupted."""
    try:
        return read_checkpoint(path)
    except CheckpointError as first:
        prev = previous_path(path)
        if fallback and prev.is_file():
            try:
                leaves, meta = read_checkpoint(prev)
            except CheckpointError as second:
                raise CheckpointError(f"{first}; the previous one is unusable too: {second}") from None
            warnings.warn(f"{first}; using the previous checkpoint {prev.name} "
                          f"(epoch {meta['epoch']})", CheckpointFallbackWarning, stacklevel=2)
            return leaves, meta
        raise


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint was unusable and the previous one was loaded instead."""


def restore_state(template: Any, leaves: list[np.ndarray]) -> Any:
    """Put saved ``leaves`` into the structure of ``template`` (a freshly built state of the same
    config), checking count, shapes and dtypes, as device arrays."""
    return jax.tree.map(jax.numpy.asarray, restore_leaves(template, leaves))
