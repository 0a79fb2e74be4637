"""``jaxmlp bench --e2e``: whole commands timed in fresh processes against peer scripts.

``harness`` runs the cases, ``results`` reads and summarises what they left behind (pure, no
JAX), ``peers/`` holds the scikit-learn and PyTorch scripts as a user would write them. Not
imported by ``import jaxmlp``.
"""


def main(argv=None) -> int:
    from jaxmlp.bench.e2e.harness import main as _main
    return _main(argv)
