"""Analytics at scale: 1,000 runs × 1,000 metric rows.

Prints one JSON line per case: wall seconds, RSS delta and peak RSS (MB), and where it makes
sense a ratio against a reference measured in the same run:
- compare_all_*: every run against a baseline (final/best deltas, deltas at matching steps,
  config and environment diffs). Reference: the same comparison computed straight from the
  files (no index) — what the index saves.
- index_refresh_after_append: 1 % of the runs grew; reference: the cold index build.
- gate_one / gate_all: 3 rules, one run / every run against the baseline.
- report: the whole HTML report (curves, comparison table, gates for every run, drift).

    python benchmarks/bench_run_compare.py [--runs 1000] [--rows 1000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import harness  # noqa: E402
from support import analytics_synth as synthetic  # noqa: E402

from rustorch_tools.analytics.compare import compare  # noqa: E402
from rustorch_tools.analytics.gates import evaluate, parse_rule  # noqa: E402
from rustorch_tools.analytics.index import RunIndex  # noqa: E402
from rustorch_tools.analytics.report import ReportOptions, render_report  # noqa: E402
from rustorch_tools.analytics.summary import RunSummary, summarize_run  # noqa: E402
from rustorch_tools.store import layout, runs  # noqa: E402

RULES = [parse_rule(r) for r in ("val_acc >= -0.5%", "mean(step_time_ms) <= +10%", "best(loss) <= +5%")]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this process and its finished workers: less sensitive than wall time to
    other load on a shared machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


_last_cpu = 0.0


def measure(fn):
    global _last_cpu
    gc.collect()
    r0 = rss_mb()
    c0 = cpu_s()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    _last_cpu = cpu_s() - c0
    return out, wall, rss_mb() - r0


def emit(case: str, wall: float, rss_delta: float, **extra) -> None:
    harness.emit({"case": case, "wall_s": round(wall, 4), "cpu_s": round(_last_cpu, 4),
                  "rss_delta_mb": round(rss_delta, 1), "peak_rss_mb": round(peak_mb(), 1), **extra})


def synthesize(root: Path, n_runs: int, n_rows: int) -> None:
    t0 = 1_764_000_000.0
    synthetic.write_run(root, synthetic.run_doc("baseline", config={"lr": 0.1}, started_at=t0),
                        synthetic.training_rows(n_rows, start_time=t0))
    for i in range(1, n_runs):
        started = t0 + 600.0 * i
        parent = {"run_id": "baseline", "relation": "fork", "checkpoint": None} if i % 10 == 0 else None
        doc = synthetic.run_doc(f"run-{i:05d}", config={"lr": 0.1 + (i % 7) * 0.01, "depth": i % 3},
                                started_at=started, parent=parent)
        synthetic.write_run(root, doc, synthetic.training_rows(
            n_rows, start_time=started, final_acc=0.94 + (i % 13) / 1000,
            step_time_ms=12.0 + (i % 5) * 0.4, noise=0.001 * (i % 3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--dir", type=Path, help="reuse/keep synthesized runs here")
    args = ap.parse_args()
    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-run-compare-")
        root = Path(tmp)
    else:
        root = args.dir
        root.mkdir(parents=True, exist_ok=True)
    try:
        if not any(layout.iter_run_dirs(root)):
            _, wall, d = measure(lambda: synthesize(root, args.runs, args.rows))
            emit("synthesize", wall, d, runs=args.runs, rows_per_run=args.rows)
        shutil.rmtree(root / layout.INDEX_DIR, ignore_errors=True)
        run_dirs = list(layout.iter_run_dirs(root))

        # Reference: everything straight from the files, no index.
        def naive():
            summaries = [summarize_run(d) for d in run_dirs]
            ok = [s for s in summaries if isinstance(s, RunSummary)]
            base = next(s for s in ok if s.run_id == "baseline")
            return compare(base, [s for s in ok if s is not base])
        doc, naive_s, d = measure(naive)
        emit("compare_all_from_files", naive_s, d, runs=len(doc["comparisons"]) + 1)

        def cold():
            with RunIndex(root) as ix:
                return ix.refresh()
        stats, cold_s, d = measure(cold)
        emit("index_build_cold", cold_s, d, runs=stats.scanned, reread=stats.updated)

        def warm_compare():
            with RunIndex(root) as ix:
                ix.refresh()
                runs_ = ix.summaries()
                ix.load_series(runs_)
                base = next(s for s in runs_ if s.run_id == "baseline")
                return compare(base, [s for s in runs_ if s is not base])
        doc, warm_s, d = measure(warm_compare)
        emit("compare_all_indexed", warm_s, d, runs=len(doc["comparisons"]) + 1,
             reference="compare_all_from_files", ratio=round(naive_s / warm_s, 1), goal_s=1.0,
             goal_met=warm_s < 1.0)

        def warm_compare_finals():
            with RunIndex(root) as ix:
                ix.refresh()
                runs_ = ix.summaries()
                base = next(s for s in runs_ if s.run_id == "baseline")
                return compare(base, [s for s in runs_ if s is not base], with_steps=False)
        doc, fin_s, d = measure(warm_compare_finals)
        emit("compare_all_indexed_no_steps", fin_s, d, runs=len(doc["comparisons"]) + 1,
             reference="compare_all_from_files", ratio=round(naive_s / fin_s, 1))

        grown = run_dirs[1::100]
        for rd in grown:
            runs.append_rows(rd / layout.METRICS, [{"step": args.rows + 5, "time": 1.0, "loss": 0.01}])

        def refresh_after_append():
            with RunIndex(root) as ix:
                return ix.refresh()
        stats, inc_s, d = measure(refresh_after_append)
        emit("index_refresh_after_append", inc_s, d, reread=stats.updated,
             reference="index_build_cold", ratio=round(cold_s / inc_s, 1))

        def gate_one():
            with RunIndex(root) as ix:
                ix.refresh()
                base, cand = ix.summaries(["baseline", run_dirs[len(run_dirs) // 2].name])
                return evaluate(RULES, cand, base)
        _, g1, d = measure(gate_one)
        emit("gate_one", g1, d, rules=len(RULES))

        def gate_all():
            with RunIndex(root) as ix:
                ix.refresh()
                all_ = ix.summaries()
                base = next(s for s in all_ if s.run_id == "baseline")
                return [evaluate(RULES, r, base) for r in all_ if r is not base]
        results, ga, d = measure(gate_all)
        emit("gate_all", ga, d, runs=len(results), failed=sum(not r["passed"] for r in results))

        def report():
            with RunIndex(root) as ix:
                ix.refresh()
                return render_report(ix, ReportOptions(baseline="baseline", rules=RULES,
                                                       drift_metric="val_acc", drift_threshold=0.945))
        (html, failed), rep, d = measure(report)
        emit("report", rep, d, html_bytes=len(html.encode()), gates_failed=failed)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
