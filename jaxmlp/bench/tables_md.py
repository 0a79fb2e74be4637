"""The markdown table every benchmark table is printed as (pure Python)."""
from __future__ import annotations

DASH = "\u2013"  # printed where a value is absent


def md(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
