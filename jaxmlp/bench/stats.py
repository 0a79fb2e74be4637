"""Statistics over benchmark rounds: the median, min and max of repeated timings (pure Python,
shared by the in-process and the whole-command benchmark)."""
from __future__ import annotations

import math
import statistics


def summary(values) -> dict | None:
    """``{"median", "min", "max", "n", "values"}`` of the finite values (None if there are none)."""
    xs = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs),
            "values": xs}
