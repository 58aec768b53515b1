"""Plain-text and Markdown tables, and the number formats the commands print."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from ..store.layout import printable


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


_NUMBER_RE = re.compile(r"[+-]?(\d[\d,]*\.?\d*|\.\d+)([eE][+-]?\d+)?%?|[+-]?inf|nan|-")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table (tabulate, cells printed as given): a column whose every cell is a
    number (or "-") is right-aligned, any other column left-aligned (so run ids that start
    with a digit line up); control characters escaped."""
    body = [[printable(c) for c in row] for row in rows]
    align = []
    for i in range(len(headers)):
        cells = [row[i] for row in body if i < len(row)]
        numeric = bool(cells) and all(_NUMBER_RE.fullmatch(c) for c in cells) and any(c != "-" for c in cells)
        align.append("right" if numeric else "left")
    return tabulate(body, headers=[printable(h) for h in headers], tablefmt="simple",
                    disable_numparse=True, colalign=align)


def _md_cell(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "| " + " | ".join(_md_cell(h) for h in headers) + " |"
    sep = "|" + "|".join("---" for _ in headers) + "|"
    body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])
