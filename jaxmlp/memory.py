"""The memory a job needs against the memory the machine has, checked before the job starts.

A size a user can type (``--n-samples 2000000000``, ``--hidden 100000000``) must end in one
clear error, not in an allocation failure deep inside NumPy or XLA, or in the kernel killing
the process when Linux has overcommitted memory it does not have. The checks compare a *lower
bound* of what the job holds at once (its data, its training state) with the memory available
now, so they never stop a job that could fit.
"""
from __future__ import annotations

import os

from jaxmlp.errors import ConfigError

GIB = 2**30


def available_bytes(platform: str = "cpu") -> int | None:
    """Memory a new allocation can use now: host memory (Linux's ``MemAvailable``, else free
    physical pages) for ``"cpu"``; for an accelerator the free memory of JAX's first device
    (its allocator's limit minus what is in use). ``None`` when the system does not say."""
    if platform != "cpu":
        import jax
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(need: float, what: str, hint: str, *, platform: str = "cpu",
               error=ConfigError) -> None:
    """``error`` (a one-line message naming ``what`` and ``hint``) when ``need`` bytes exceed
    the memory available on ``platform``; nothing when they fit or the system does not say."""
    have = available_bytes(platform)
    if have is not None and need > have:
        where = "this machine's" if platform == "cpu" else f"the {platform} device's"
        raise error(f"{what} needs at least {need / GIB:.1f} GiB, more than the "
                    f"{max(have, 0) / GIB:.1f} GiB of {where} memory available now; {hint}")
