"""Lazy re-exports for a package's ``__init__`` (PEP 562): each public name is imported from
its defining module on first access, so importing the package itself stays cheap (``import
jaxmlp``, ``jaxmlp --help`` and the data set names load no JAX)."""
from __future__ import annotations

import importlib
import importlib.util
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public names are ``exports`` (name ->
    defining submodule, relative to the package). Other attributes resolve to submodules."""

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
