"""Plain-text and Markdown tables, and the number formats the commands print."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt_num(x: Any) -> str:
    """Six significant digits; `-` for missing; nan/inf spelled out."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.6g}"
    return str(x)


def fmt_delta(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return ("+" if x > 0 else "") + fmt_num(x)


def fmt_pct(rel: float | None) -> str:
    """A relative change (fraction) as a signed percentage."""
    if rel is None or (isinstance(rel, float) and math.isnan(rel)):
        return "-"
    if math.isinf(rel):
        return "+inf%" if rel > 0 else "-inf%"
    return f"{rel * 100:+.2f}%"


def fmt_value(x: Any, limit: int = 60) -> str:
    """A config value, shortened for a table cell."""
    import json

    if x is None:
        return "-"
    text = x if isinstance(x, str) else json.dumps(x, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            numeric = bool(cell) and (cell[0].isdigit() or cell[0] in "+-.") and cell != "-"
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _md_cell(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "| " + " | ".join(_md_cell(h) for h in headers) + " |"
    sep = "|" + "|".join("---" for _ in headers) + "|"
    body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])
