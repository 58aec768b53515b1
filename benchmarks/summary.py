"""The goal table of `make bench`: reads the JSON lines the benchmarks printed and writes a
markdown table of every row that has a goal (case, goal, measured value, met/missed, load
average). A goal is either `goal` (met when `ratio` <= goal) or an absolute one in seconds,
`goal_s` (met when `s` <= goal_s), or in MB, `goal_mb` (met when `mb` <= goal_mb). Not a
benchmark itself: it needs the file(s) to read.

    python benchmarks/summary.py build/bench.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
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


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | goal | measured | status | threads | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        load = r.get("load_avg")
        load_s = "/".join(f"{v:g}" for v in load) if isinstance(load, list) else "?"
        for goal, measured, met in _checks(r):
            out.append(
                f"| {r.get('case', '?')} | {goal} | {measured} | {'met' if met else 'missed'} | "
                f"{r.get('threads', '?')} | {load_s} |"
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
