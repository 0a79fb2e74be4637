#!/usr/bin/env python
"""Benchmarks against PyTorch eager and scikit-learn: a thin wrapper over ``jaxmlp.bench``
(the same as ``jaxmlp bench``). See BENCHMARKS.md."""
import sys

from jaxmlp.bench import main

if __name__ == "__main__":
    sys.exit(main())
