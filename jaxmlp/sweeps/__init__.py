"""Sweeps: many models trained in one compiled program per shape.

``api`` is the entry point (``sweep``, ``expand_grid``, ``SweepResult``), ``plan`` groups
models into programs (width padding or packing), ``program`` builds and compiles a program's
state and chunk, ``execute`` runs a compiled program in chunks over the data streams.
"""
from jaxmlp.sweeps.api import GRID_AXES, SweepResult, expand_grid, sweep, width_buckets

__all__ = ["GRID_AXES", "SweepResult", "expand_grid", "sweep", "width_buckets"]
