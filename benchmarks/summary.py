"""The goal table of `make bench`: reads the JSON lines the benchmarks printed and writes a
markdown table of every row that has a goal (case, goal, measured value, met/missed, load
average). A case measured more than once (several files, or `make bench` run twice into one
file) shows the median of its values, judged against the goal, with the range and the number of
runs beside it. A goal is either `goal` (met when `ratio` <= goal) or an absolute one in seconds,
`goal_s` (met when `s` <= goal_s), or in MB, `goal_mb` (met when `mb` <= goal_mb). Not a
benchmark itself: it needs the file(s) to read.

    python benchmarks/summary.py build/bench.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

_GOALS = (("goal", "ratio", "ratio <= {:g}", "{:.3f}"), ("goal_s", "s", "<= {:g} s", "{:.3f} s"),
          ("goal_mb", "mb", "<= {:g} MB", "{:.0f} MB"))


def _checks(row: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(goal text, measured text, met) of every goal the row carries."""
    out = []
    for goal_key, value_key, goal_fmt, value_fmt in _GOALS:
        goal, value = row.get(goal_key), row.get(value_key)
        if isinstance(goal, (int, float)) and isinstance(value, (int, float)):
            out.append((goal_fmt.format(goal), value_fmt.format(value), value <= goal))
    return out


def goal_rows(lines: list[str]) -> list[dict[str, Any]]:
    """Rows with a numeric goal and the value it is checked against; other lines (logs, rows
    without a goal) are skipped."""
    rows = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):
            continue
        if _checks(row):
            rows.append(row)
    return rows


def _loads_text(loads: list[Any]) -> str:
    """1/5/15-minute load of a single run; the 1-minute load of each run when merged."""
    if len(loads) == 1:
        return "/".join(f"{v:g}" for v in loads[0]) if isinstance(loads[0], list) else "?"
    return ", ".join(f"{v[0]:g}" if isinstance(v, list) and v else "?" for v in loads)


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (case, goal), in first-seen order; repeated measurements are merged."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        for goal_key, value_key, goal_fmt, value_fmt in _GOALS:
            goal, value = r.get(goal_key), r.get(value_key)
            if not (isinstance(goal, (int, float)) and isinstance(value, (int, float))):
                continue
            entry = merged.setdefault((str(r.get("case", "?")), goal_fmt.format(goal)), {
                "goal": goal, "fmt": value_fmt, "values": [], "loads": [],
                "threads": r.get("threads", "?")})
            entry["values"].append(value)
            entry["loads"].append(r.get("load_avg"))
    out = [
        "| case | goal | measured | status | runs (range) | threads | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for (case, goal_text), e in merged.items():
        values = e["values"]
        median = statistics.median(values)
        spread = (f"{len(values)} ({e['fmt'].format(min(values))} - {e['fmt'].format(max(values))})"
                  if len(values) > 1 else "1")
        out.append(
            f"| {case} | {goal_text} | {e['fmt'].format(median)} | "
            f"{'met' if median <= e['goal'] else 'missed'} | {spread} | {e['threads']} | "
            f"{_loads_text(e['loads'])} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="JSON-lines files")
    args = parser.parse_args(argv)
    lines: list[str] = []
    for path in args.files:
        try:
            lines += path.read_text(errors="replace").splitlines()
        except OSError as e:
            parser.error(f"cannot read {path}: {e}")
    rows = goal_rows(lines)
    if not rows:
        print("no rows with a goal found", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
