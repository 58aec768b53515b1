"""Benchmark the incremental validation pass (`validate --incremental`, each `watch` pass) on a
synthetic RUNS_DIR of 10,000 runs: a cold pass (builds the cache), a pass with nothing
changed, and a pass with 10 changed runs. The reference is a full `validate` of the same tree;
ratio = incremental / full (lower is better). One JSON line per case.

Goal (issue 13): the pass over 10k runs with 10 changed <= 1 s.

    python benchmarks/bench_watch.py [--runs 10000] [--rows 50] [--changed 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run_validate import synthesize  # noqa: E402
from harness import emit as emit_row  # noqa: E402

from rustorch_tools.governance.incremental import validate_incremental  # noqa: E402
from rustorch_tools.governance.validate import validate_runs  # noqa: E402
from rustorch_tools.store import runs as store_runs  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    try:
        synthesize(root, args.runs, args.rows)
        _, full_s = timed(lambda: validate_runs(root, jobs=args.jobs))
        base = {"runs": args.runs, "rows": args.rows, "jobs": args.jobs, "threads": args.jobs,
                "reference": "full validate", "reference_s": round(full_s, 3)}

        def emit(case: str, out, wall: float, goal: float | None) -> None:
            row = {"case": case, **base, "s": round(wall, 3), "checked": len(out.checked),
                   "reused": out.reused, "ratio": round(wall / full_s, 4)}
            emit_row({**row, "goal_s": goal} if goal is not None else row)

        out, wall = timed(lambda: validate_incremental(root, jobs=args.jobs))
        emit("incremental cold (builds the cache)", out, wall, None)
        out, wall = timed(lambda: validate_incremental(root, jobs=args.jobs))
        emit("incremental, nothing changed", out, wall, None)
        folders = sorted(p for p in root.iterdir() if p.name.startswith("run-"))
        step = max(1, len(folders) // max(1, args.changed))
        for d in folders[::step][:args.changed]:
            store_runs.append_rows(d / "metrics.jsonl",
                                   [{"step": 10**6, "time": time.time(), "loss": 0.5}])
        out, wall = timed(lambda: validate_incremental(root, jobs=args.jobs))
        emit(f"incremental, {args.changed} changed", out, wall, 1.0)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
