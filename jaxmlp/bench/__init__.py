"""Benchmarks against peers (``jaxmlp bench``); never imported by ``import jaxmlp``.

``inproc`` times the compiled programs in-process against PyTorch eager and scikit-learn
(``peers`` holds their implementations, run as scripts), ``e2e`` times whole commands in fresh
processes (time to result).
"""
