#!/usr/bin/env python
"""Benchmarks against PyTorch eager and scikit-learn: a thin wrapper over ``jaxmlp.bench.inproc``
(the same as ``jaxmlp bench``). See BENCHMARKS.md."""
import sys

from jaxmlp.bench.inproc import main

if __name__ == "__main__":
    sys.exit(main())
