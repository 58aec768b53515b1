"""Pipeline overhead: a 100-stage DAG of no-op Python stages on the local process pool.

    python benchmarks/bench_pipeline.py [--stages 100] [--workers N]

Stage i depends on stages i-1 and i-10 (a layered DAG, not a chain, so the pool has parallel
work). Cases, one JSON line each, `s` measured against the absolute goal `goal_s`:
- `cold`: every stage executes (a run per stage, outputs logged) — goal 5 s for 100 stages,
  pool start included.
- `per_stage_overhead`: the driver's time per stage to resolve its params and check the cache
  (measured inside the cold run) — goal 50 ms.
- `cached`: the same pipeline again, every stage a cache hit; wall time per stage — goal 50 ms.
Each line carries the load average and the worker count: numbers from a loaded machine are
preliminary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import emit  # noqa: E402

from rustorch_tools.pipeline.driver import Driver  # noqa: E402
from rustorch_tools.pipeline.executors import LocalExecutor  # noqa: E402
from rustorch_tools.pipeline.spec import parse  # noqa: E402


def write_pipeline(path: Path, n: int) -> None:
    lines = ["[pipeline]", 'name = "bench"', ""]
    for i in range(n):
        deps = [f"s{j}" for j in (i - 1, i - 10) if j >= 0]
        lines += [f"[stages.s{i}]", 'python = "rustorch_tools.pipeline.builtins:noop"',
                  f"params = {{ value = {i} }}", f"deps = {json.dumps(deps)}", ""]
    path.write_text("\n".join(lines))


def emit_case(case: str, seconds: float, goal_s: float, workers: int, **extra: object) -> None:
    emit({"case": f"pipeline_{case}", "group": "pipeline", "s": round(seconds, 4),
          "goal_s": goal_s, "workers": workers, **extra})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        path = Path(tmp) / "bench.toml"
        write_pipeline(path, args.stages)
        runs = Path(tmp) / "runs"
        for case in ("cold", "cached"):
            t0 = time.perf_counter()
            p = parse(path)
            executor = LocalExecutor(args.workers)
            try:
                outcome = Driver(p, runs, executor, concurrency=args.workers).run()
            finally:
                executor.close()
            wall = time.perf_counter() - t0
            statuses = {s.status for s in outcome.instances.values()}
            expected = {"done"} if case == "cold" else {"cached"}
            if statuses != expected:
                print(json.dumps({"bench": "pipeline", "case": case, "error": f"statuses {statuses}"}))
                return 1
            if case == "cold":
                emit_case(f"{args.stages}_stages_cold", wall, 5.0 * args.stages / 100, args.workers)
                overhead = [s.overhead_s for s in outcome.instances.values()]
                emit_case("per_stage_overhead", sum(overhead) / len(overhead), 0.05, args.workers,
                          max_s=round(max(overhead), 4))
            else:
                emit_case("cached_per_stage", wall / args.stages, 0.05, args.workers,
                          total_s=round(wall, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
