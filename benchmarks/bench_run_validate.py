"""Benchmark `validate` on a synthetic RUNS_DIR: 10,000 runs x 1,000 metric rows (+ a few
corrupted runs), then `validate --incremental` after 10 runs changed.

Prints one JSON line per case (benchmarks/harness.py conventions, load average and threads in
each): `s` wall seconds, peak RSS (this process and the largest pool worker, `mb` = their
bound main + jobs x worker), and `ratio` = ours / a reference measured in the same run (the
store's line-by-line `jsonl.scan`, timed on a sample of runs and scaled per row; lower is
better). Goals (issue 12), listed by benchmarks/summary.py: cold <= 5 s (`goal_s`) and
<= 300 MB (`goal_mb`) with 2 jobs; incremental re-validate with 10 changed runs <= 1 s.
"Cold" means no validate cache; the files are in the page cache (just written), as on a
machine that validates what it just wrote. Each run's manifest records its JSONL files as
`Run.finish` does (`logs`: rows, bytes, SHA-256), so the digests are checked too. The synthetic tree is about 1 GB; `--keep DIR`
reuses one across invocations.

    python benchmarks/bench_run_validate.py [--runs 10000] [--rows 1000] [--jobs 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import harness  # noqa: E402
from support.governance_synth import metric_rows, run_doc  # noqa: E402

from rustorch_tools.governance.incremental import validate_incremental  # noqa: E402
from rustorch_tools.governance.repair import summary_from_metrics  # noqa: E402
from rustorch_tools.governance.validate import validate_runs  # noqa: E402
from rustorch_tools.store import jsonl  # noqa: E402
from rustorch_tools.store.atomic import dumps_json  # noqa: E402

CORRUPT = ("torn", "crc", "descent", "no_run_json", "nan")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthesize(root: Path, runs: int, rows: int) -> int:
    """Writes the tree; the metrics bytes are built once and reused (validation cost is the
    same for every copy). Returns the number of corrupted runs."""
    metrics = metric_rows(rows)
    first = root / "template"
    first.mkdir(parents=True)
    (first / "metrics.jsonl").write_bytes(metrics)
    summary = summary_from_metrics(first)
    shutil.rmtree(first)
    now = time.time()
    events = (jsonl.encode_row({"time": now - 100, "event": "created"})
              + jsonl.encode_row({"time": now - 1, "event": "finished"}))
    # What Run.finish records (manifest.json `logs`): validation hashes both files against it.
    logs = {name: {"rows": data.count(b"\n"), "bytes": len(data),
                   "sha256": hashlib.sha256(data).hexdigest(), "recorded_at": now - 1}
            for name, data in (("metrics.jsonl", metrics), ("events.jsonl", events))}
    manifest = dumps_json({"schema_version": 1, "files": {}, "logs": logs})
    for i in range(runs):
        run_id = f"run-{i:06d}"
        d = root / run_id
        d.mkdir()
        (d / "run.json").write_bytes(dumps_json(run_doc(run_id, now=now, summary=summary)))
        (d / "metrics.jsonl").write_bytes(metrics)
        (d / "events.jsonl").write_bytes(events)
        (d / "manifest.json").write_bytes(manifest)
    step = max(1, runs // len(CORRUPT) // 2)
    for k, kind in enumerate(CORRUPT):
        d = root / f"run-{k * step:06d}"
        data = bytearray(metrics)
        if kind == "torn":
            data += jsonl.encode_row({"step": rows, "time": 1.0, "loss": 1.0})[:20]
        elif kind == "crc":
            data[len(data) // 2] ^= 1
        elif kind == "descent":
            data += metric_rows(3)
        elif kind == "nan":
            data += jsonl.encode_row({"step": rows, "time": 1.0, "loss": float("nan")})
        else:
            (d / "run.json").unlink()
        (d / "metrics.jsonl").write_bytes(bytes(data))
    return len(CORRUPT)


def reference_per_row(root: Path, sample: int) -> float:
    """Seconds per row of the naive check: the store's `scan` (decode every line)."""
    dirs = sorted(p for p in root.iterdir() if p.is_dir())[-sample:]
    n = 0
    t0 = time.perf_counter()
    for d in dirs:
        for res in jsonl.scan(d / "metrics.jsonl"):
            n += 1
            _ = res.row
    return (time.perf_counter() - t0) / max(1, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=1_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="synthesize into (and keep) this folder")
    args = ap.parse_args()

    tmp = None
    if args.keep is None:
        tmp = tempfile.mkdtemp(prefix="bench-validate-")
        root = Path(tmp)
    else:
        root = args.keep
    try:
        if not (root / "run-000000").exists():
            t0 = time.perf_counter()
            corrupted = synthesize(root, args.runs, args.rows)
            synth_s = time.perf_counter() - t0
        else:
            corrupted, synth_s = len(CORRUPT), 0.0
        rows_total = args.runs * args.rows
        before = rss_mb()
        ru0 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        t0 = time.perf_counter()
        report = validate_runs(root, jobs=args.jobs)
        wall = time.perf_counter() - t0
        ru1 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        cpu = sum(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime
                  for a, b in zip(ru0, ru1, strict=True))
        after = rss_mb()
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        ref = reference_per_row(root, sample=max(1, min(100, args.runs // 100)))
        s = report.summary()
        bound = self_peak + args.jobs * child_peak
        harness.emit({
            "case": f"validate_{args.runs}_runs_x_{args.rows}_rows_cold_jobs{args.jobs}",
            "group": "validate", "runs": args.runs, "rows_total": rows_total, "jobs": args.jobs,
            "s": round(wall, 3), "goal_s": 5.0, "mb": round(bound, 1), "goal_mb": 300,
            "ratio": round(wall / (ref * rows_total), 3),
            "reference": "store jsonl.scan line by line (sampled)",
            "reference_est_s": round(ref * rows_total, 1),
            "peak_rss_mb_main": round(self_peak, 1), "peak_rss_mb_worker": round(child_peak, 1),
            "rss_delta_mb_main": round(after - before, 1), "cpu_s": round(cpu, 2),
            "rows_per_s": round(rows_total / wall),
            "runs_with_errors": s["runs_with_errors"], "corrupted_expected": corrupted,
            "synthesize_s": round(synth_s, 1),
        })
        # Incremental: a first pass fills the cache, then 10 runs gain a row each.
        validate_incremental(root, jobs=args.jobs, history=False)
        changed = sorted(p for p in root.iterdir() if p.name.startswith("run-"))[-10:]
        for d in changed:
            with open(d / "metrics.jsonl", "ab") as fh:
                fh.write(jsonl.encode_row({"step": args.rows + 10, "time": time.time(), "loss": 0.1}))
        t0 = time.perf_counter()
        passed = validate_incremental(root, jobs=args.jobs, history=False)
        inc = time.perf_counter() - t0
        harness.emit({
            "case": f"validate_incremental_{args.runs}_runs_10_changed_jobs{args.jobs}",
            "group": "validate", "s": round(inc, 3), "goal_s": 1.0,
            "ratio": round(inc / wall, 4), "reference": "the cold validate above",
            "rechecked": len(passed.checked), "reused": passed.reused,
        })
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
