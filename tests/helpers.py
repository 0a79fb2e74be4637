"""Helpers shared by the test modules (importable: pytest puts tests/ on sys.path)."""
import jax
import numpy as np


def max_abs_diff(a, b) -> float:
    """The largest absolute difference between two pytrees of arrays, leaf by leaf."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_main(argv, capsys):
    """``jaxmlp.cli.main(argv)`` in-process: (exit code, stdout, stderr)."""
    from jaxmlp.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err
