"""The benchmarks' argument parser: a bad flag is one ``error:`` line and exit code 2, as in
the rest of the CLI."""
from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """Bad flags: one ``error:`` line and exit code 2, like the rest of the CLI."""

    def error(self, message):
        sys.stderr.write(f"error: {self.prog}: {message}\n")
        sys.exit(2)
