"""Compiled programs kept on disk between runs: JAX's persistent compilation cache.

A repeated experiment (the same shapes and settings, other seeds, learning rates, temperatures,
L2 strengths or epochs: these are traced, not compiled in) then loads its programs instead of
compiling them. The ``jaxmlp`` commands use it by default in the user's cache folder
(``default_folder``); ``--no-compile-cache`` or ``JAXMLP_COMPILE_CACHE=off`` turn it off. The
library leaves it to the caller (``use_compile_cache``), as it leaves every global JAX setting.

Safety: the folder holds executable code, so it is created private (mode 0700) and a folder
writable by others or owned by another user is refused. Entries are keyed by the program, the
compiler options and the jax/jaxlib versions. The cache is capped (``MAX_BYTES``, least recently
used entries evicted), which also makes JAX lock the folder around every read and write, so
processes can share it. An entry that cannot be read back (truncated, corrupted) is a warning,
is deleted and compiled again, never a crash.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import warnings
from functools import lru_cache
from pathlib import Path

import jax

from jaxmlp.errors import ConfigError

ENV = "JAXMLP_COMPILE_CACHE"
OFF = ("off", "0", "none", "false", "no")
# Our programs serialise to 0.1-1 MB each: 512 MB keeps hundreds of shapes.
MAX_BYTES = 512 * 2**20
MAX_ENV = "JAXMLP_COMPILE_CACHE_MAX_MB"
KEEP_VERSIONS = 3  # caches of this many jaxmlp versions (source digests) are kept


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/jaxmlp/xla`` (``~/.cache/jaxmlp/xla`` without XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxmlp" / "xla"


def resolve(flag: str | None, disabled: bool = False) -> tuple[Path | None, bool]:
    """The cache folder a command uses: ``(folder or None, explicit)``. ``flag``
    (``--compile-cache DIR``) beats ``$JAXMLP_COMPILE_CACHE`` (a folder or ``off``), which beats
    the default folder; ``disabled`` (``--no-compile-cache``) turns it off. ``explicit`` says
    whether the user named the folder (then a bad folder is an error, else a warning)."""
    if disabled:
        return None, True
    if flag:
        return (None, True) if flag.strip().lower() in OFF else (Path(flag), True)
    env = os.environ.get(ENV, "").strip()
    if env:
        return (None, True) if env.lower() in OFF else (Path(env), True)
    return default_folder(), False


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (mode 0700) or check an existing one is ours and not writable by
    others; ConfigError otherwise."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as e:
        raise ConfigError(f"compile cache {folder}: cannot create it ({e.strerror or e})") from None
    if not stat.S_ISDIR(info.st_mode) or not os.access(folder, os.W_OK):
        raise ConfigError(f"compile cache {folder}: not a writable folder")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"compile cache {folder}: owned by another user; it holds executable "
                          "code, use a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"compile cache {folder}: writable by other users; it holds executable "
                          f"code (chmod 700 {folder}, or use another folder)")


def _max_bytes() -> int:
    text = os.environ.get(MAX_ENV)
    if text is None:
        return MAX_BYTES
    try:
        mb = float(text)
    except ValueError:
        raise ConfigError(f"{MAX_ENV} must be a number of megabytes, got {text!r}") from None
    if not mb > 0:
        raise ConfigError(f"{MAX_ENV} must be > 0, got {text!r}")
    return int(mb * 2**20)


@lru_cache(maxsize=1)
def source_files() -> tuple[Path, list[Path]]:
    """The jaxmlp package folder and every Python file in it, sub-packages included."""
    pkg = Path(__file__).resolve().parents[1]  # jaxmlp/training/compile_cache.py -> jaxmlp
    return pkg, sorted(pkg.rglob("*.py"))


def source_digest() -> str:
    """A digest of every Python file of this package: another jaxmlp is another cache."""
    h = hashlib.sha256()
    pkg, paths = source_files()
    for path in paths:
        h.update(str(path.relative_to(pkg)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def version_folder(folder: Path) -> Path:
    """The sub-folder of ``folder`` for this jaxmlp's source: ``v-<digest>``. Each jaxmlp has
    its own, so an executable JAX loads from its cache is never one that ``jaxmlp.training.aot_cache``
    should have had (JAX's loaded executables do not serialise again on XLA:CPU); the oldest
    of more than ``KEEP_VERSIONS`` are deleted."""
    return folder / f"v-{source_digest()[:16]}"


def _drop_old_versions(folder: Path, keep: Path) -> None:
    old = sorted((p for p in folder.glob("v-*") if p.is_dir() and p != keep),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[KEEP_VERSIONS - 1:]:
        shutil.rmtree(p, ignore_errors=True)


def use_compile_cache(path: str | os.PathLike, *, max_bytes: int | None = None) -> Path:
    """Cache every program compiled from now on in the folder ``path`` (created private if
    missing; the entries go to its ``version_folder``), whatever its size or compile time
    (jaxmlp's programs compile in well under JAX's 1 s default threshold), evicting the least
    recently used entries above ``max_bytes`` (default ``MAX_BYTES`` or
    ``$JAXMLP_COMPILE_CACHE_MAX_MB``). Call before the first compile. Returns the folder."""
    folder = Path(path).expanduser()
    _private_folder(folder)
    versioned = version_folder(folder)
    _private_folder(versioned)
    os.utime(versioned)
    _drop_old_versions(folder, versioned)
    jax.config.update("jax_compilation_cache_max_size",
                      _max_bytes() if max_bytes is None else int(max_bytes))
    jax.config.update("jax_compilation_cache_dir", str(versioned))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _drop_unreadable_entries(folder)
    return folder


def enable_for_command(flag: str | None, disabled: bool = False) -> Path | None:
    """What a ``jaxmlp`` command does: the resolved folder in use, or None (off). A folder the
    user named must work (ConfigError); the default one that does not is a warning."""
    folder, explicit = resolve(flag, disabled)
    if folder is None:
        return None
    try:
        return use_compile_cache(folder)
    except ConfigError as e:
        if explicit:
            raise
        warnings.warn(f"{e}; running without a compile cache (--no-compile-cache hides this)",
                      stacklevel=2)
        return None


def _drop_unreadable_entries(folder: Path) -> None:
    """Make JAX delete, and compile again, an entry it cannot read back: JAX warns and compiles,
    but never replaces an existing entry, so a corrupted file would cost a compile and a
    warning on every later run. Wraps JAX's cache read (an internal function; without it,
    entries are still never trusted blindly, just not replaced)."""
    try:
        from jax._src import compilation_cache as cc
    except ImportError:  # pragma: no cover - a JAX without the internal module
        return
    read = getattr(cc, "get_executable_and_time", None)
    if read is None or getattr(read, "_jaxmlp_wrapped", False):
        return

    def get_executable_and_time(cache_key, *args, **kwargs):
        try:
            return read(cache_key, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure to decode is an unusable entry
            lock = getattr(getattr(cc, "_cache", None), "lock", None)  # JAX's folder lock
            if lock is not None:
                lock.acquire(timeout=10)
            try:
                for f in Path(jax.config.jax_compilation_cache_dir or folder).glob(f"{cache_key}-*"):
                    f.unlink(missing_ok=True)
            except OSError:
                pass
            finally:
                if lock is not None:
                    lock.release()
            warnings.warn(f"compile cache entry {cache_key[:24]}... unreadable "
                          f"({type(e).__name__}); deleted and compiled again", stacklevel=2)
            return None, None
    get_executable_and_time._jaxmlp_wrapped = True
    cc.get_executable_and_time = get_executable_and_time
