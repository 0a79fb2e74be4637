"""Raw benchmark results on disk: every benchmark script's ``--out`` (and ``jaxmlp bench``'s
``bench.json``) written the one way, as indented JSON, atomically, its folder made first."""
from __future__ import annotations

import json
from pathlib import Path

from jaxmlp.atomic import atomic_write_text


def write_report(path, report: dict, *, default=None) -> None:
    """``report`` as JSON at ``path`` (``default`` as ``json.dumps``'s, for values that are not
    JSON, e.g. ``str``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=1, default=default) + "\n")
