"""Benchmarks against peers (``jaxmlp bench``); never imported by ``import jaxmlp``.

``inproc`` times the compiled programs in-process against PyTorch eager and scikit-learn:
``workloads`` (what runs, and the data files), ``runner`` (child processes in interleaved
rounds), ``peers`` (each framework's runners, run as ``python -P -m jaxmlp.bench.peers``),
``analysis`` (losses, checks, speedups), ``report`` (targets, tables, figure), ``machine``
(CPU, versions, threads, torch), ``stats`` (median/min/max over rounds), ``args`` (the
one-line-error parser). ``e2e`` times whole commands in fresh processes (time to result).
"""
