"""Sweeps: many models trained in one compiled program per shape.

``axes`` is the table of grid axes (how each sets the config, traced or shape), ``api`` the
entry point (``sweep``, ``SweepResult``), ``plan`` groups models into programs (width padding
or packing; one set of programs per depth), ``program`` builds and compiles a program's state
and chunk, ``execute`` runs a compiled program in chunks over the data streams.

The names below load on first use, so ``jaxmlp.sweeps.axes`` (the CLI's sweep flags) imports
without JAX.
"""
from __future__ import annotations

from jaxmlp.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["SweepResult", "sweep", "check_sweep"], "api"),
    **dict.fromkeys(["GRID_AXES", "expand_grid"], "axes"),
    **dict.fromkeys(["width_buckets"], "plan"),
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
