"""Sweeps: many models trained in one compiled program per shape.

``axes`` is the table of grid axes (how each sets the config, traced or shape), ``api`` the
entry point (``sweep``, ``SweepResult``), ``plan`` groups models into programs (width padding
or packing; one set of programs per depth), ``program`` builds and compiles a program's state
and chunk, ``execute`` runs a compiled program in chunks over the data streams.
"""
from jaxmlp.sweeps.api import SweepResult, sweep
from jaxmlp.sweeps.axes import GRID_AXES, expand_grid
from jaxmlp.sweeps.plan import width_buckets

__all__ = ["GRID_AXES", "SweepResult", "expand_grid", "sweep", "width_buckets"]
