"""The architecture rules of ARCHITECTURE.md, checked on the source (no imports, no JAX).

- data flows one way: a module imports only from its own layer or earlier ones (the order
  below), and nothing but the CLI's ``bench`` command imports the benchmark package;
- small pieces: no module over ``MAX_MODULE_LINES`` lines, no function over
  ``MAX_FUNCTION_LINES``; every module opens with a docstring saying its job.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "jaxmlp"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: The layers, earliest first; a module's layer is its first dotted part under jaxmlp.
LAYERS = ["lazy", "errors", "registry", "atomic", "timing", "config", "memory", "data", "losses", "calibration", "nn", "parallel",
          "objective", "backprop", "gradcheck", "training", "sweeps", "runs", "cli_flags", "cli"]


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path, ast.parse(path.read_text(), filename=str(path))


def _imports(name: str, tree: ast.AST, is_pkg: bool):
    """The jaxmlp modules ``tree`` imports (relative imports resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "jaxmlp":
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join([*base, *([mod] if mod else [])])
            if mod.split(".")[0] != "jaxmlp":
                continue
            if mod == "jaxmlp":  # from jaxmlp import x: x may be a module
                for a in node.names:
                    yield node.lineno, f"jaxmlp.{a.name}"
            else:
                yield node.lineno, mod


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = list(_modules())


@pytest.mark.parametrize("name,path,tree", MODULES, ids=[m[0] for m in MODULES])
def test_imports_flow_one_way(name, path, tree):
    me = _layer(name)
    if me is None or me == "bench":  # the package's lazy re-exports; the benchmark may import anything
        return
    assert me in LAYERS, f"{name}: add its layer to LAYERS (and to ARCHITECTURE.md)"
    bad = []
    for line, mod in _imports(name, tree, path.name == "__init__.py"):
        other = _layer(mod)
        if other is None or other == me:
            continue
        if other == "bench":
            if me != "cli":
                bad.append(f"line {line}: {mod} (only the CLI's bench command imports it)")
        elif other not in LAYERS or LAYERS.index(other) > LAYERS.index(me):
            bad.append(f"line {line}: {mod} is a later layer than {me}")
    assert not bad, f"{name} imports upward:\n" + "\n".join(bad)


@pytest.mark.parametrize("name,path,tree", MODULES, ids=[m[0] for m in MODULES])
def test_modules_and_functions_are_small(name, path, tree):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{name}: {n} lines (split it: one job per module)"
    assert ast.get_docstring(tree), f"{name}: open with a docstring saying the module's job"
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{name}: functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_the_checks_can_fail(tmp_path):
    """The import walker sees relative and absolute imports (the rules above are not vacuous)."""
    tree = ast.parse("from ..training import fit\nimport jaxmlp.cli\nfrom jaxmlp import runs\n")
    got = [m for _, m in _imports("jaxmlp.sweeps.api", tree, False)]
    assert got == ["jaxmlp.training", "jaxmlp.cli", "jaxmlp.runs"]
    assert LAYERS.index(_layer(got[1])) > LAYERS.index("sweeps")
