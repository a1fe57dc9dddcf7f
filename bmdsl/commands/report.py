"""The result tables the commands print: one row per quantity, value and note aligned."""
from __future__ import annotations

import math


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf (vacuous)"
    return f"{x:.6e}" if isinstance(x, float) else str(x)


def table(rows) -> str:
    width = max(len(k) for k, _, _ in rows)
    return "\n".join(f"  {k:<{width}}  {_fmt(v):>16}  {note}" for k, v, note in rows)


def scores_table(reports: dict) -> str:
    from ..workflow.metrics import rows
    return table(rows(reports))
