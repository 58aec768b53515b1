"""The goal table of `make bench`: reads the JSON lines the benchmarks printed and writes a
markdown table of every row that has a goal (case, goal, measured ratio, met/missed, load
average). Not a benchmark itself: it needs the file(s) to read.

    python benchmarks/summary.py build/bench.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def goal_rows(lines: list[str]) -> list[dict[str, Any]]:
    """Rows with a numeric goal and ratio; other lines (logs, rows without a goal) are skipped."""
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
        goal, ratio = row.get("goal"), row.get("ratio")
        if isinstance(goal, (int, float)) and isinstance(ratio, (int, float)):
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | goal (ratio <=) | measured ratio | status | threads | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        status = "met" if r["ratio"] <= r["goal"] else "missed"
        load = r.get("load_avg")
        load_s = "/".join(f"{v:g}" for v in load) if isinstance(load, list) else "?"
        out.append(
            f"| {r.get('case', '?')} | {r['goal']:g} | {r['ratio']:.3f} | {status} | "
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
