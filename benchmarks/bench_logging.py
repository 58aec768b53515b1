"""Logging throughput: 1,000,000 metric points through `Run.log_metrics` next to a plain
JSONL writer (json.dumps + buffered write, no CRC, no locking) in the same run; then the
full stress case, 8 processes x 10,000 rows into one run, checked row by row.

    python benchmarks/bench_logging.py [--points 1000000] [--metrics-per-row 10]

Prints one JSON line per case: wall and CPU time (CPU time is the fairer comparison on a
shared machine), peak RSS of the measuring process, and the ratios against the plain writer.
Goal: 1M points in <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rustorch_tools  # noqa: E402
from rustorch_tools.store import jsonl, layout  # noqa: E402


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _names(k: int) -> list[str]:
    return [f"metric_{i}" for i in range(k)]


def plain_writer(root: Path, rows: int, k: int) -> None:
    names = _names(k)
    with open(root / "plain.jsonl", "w") as fh:
        for step in range(rows):
            row = {"step": step, "time": time.time()}
            for i, name in enumerate(names):
                row[name] = step * 0.001 + i
            fh.write(json.dumps(row) + "\n")


def rustorch_writer(root: Path, rows: int, k: int) -> None:
    names = _names(k)
    with rustorch_tools.start_run(root, name="bench") as run:
        log = run.log_metrics
        for step in range(rows):
            log({name: step * 0.001 + i for i, name in enumerate(names)}, step=step)


def _measure(fn, root: Path, rows: int, k: int, queue: mp.Queue) -> None:
    os.write(os.open(f"/proc/{os.getpid()}/clear_refs", os.O_WRONLY), b"5")  # reset the peak
    base = _rss_kb("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    fn(root, rows, k)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    queue.put((wall, cpu, _rss_kb("VmHWM"), _rss_kb("VmHWM") - base))


def measure(fn, root: Path, rows: int, k: int) -> tuple[float, float, int, int]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(fn, root, rows, k, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _rank_writer(root: str, run_id: str, rank: int, rows: int) -> None:
    run = rustorch_tools.start_run(root, run_id=run_id, rank=rank, flush_every=100)
    for step in range(rows):
        run.log_metrics({"loss": step * 0.5 + rank, "acc": step / rows}, step=step)
    run.finish()


def multi_process(root: Path, procs: int, rows: int) -> dict[str, object]:
    ctx = mp.get_context("fork")
    start = time.perf_counter()
    workers = [ctx.Process(target=_rank_writer, args=(str(root), "ddp", r, rows)) for r in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    seen: dict[int, list[int]] = {r: [] for r in range(procs)}
    bad = 0
    for res in jsonl.scan(root / "ddp" / layout.METRICS):
        if res.row is None:
            bad += 1
        else:
            seen[res.row["rank"]].append(res.row["step"])
    complete = all(steps == list(range(rows)) for steps in seen.values())
    return {"case": f"{procs}_processes_x_{rows}_rows_one_run", "wall_s": round(wall, 3),
            "rows": sum(map(len, seen.values())), "corrupt_lines": bad, "all_rows_present_in_order": complete}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--metrics-per-row", type=int, default=10)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--proc-rows", type=int, default=10_000)
    args = parser.parse_args()
    k = args.metrics_per_row
    rows = args.points // k
    with tempfile.TemporaryDirectory(prefix="bench-logging-") as tmp:
        root = Path(tmp)
        plain = measure(plain_writer, root, rows, k)
        ours = measure(rustorch_writer, root, rows, k)
        for name, (wall, cpu, peak, growth) in (("plain_jsonl", plain), ("rustorch_tools", ours)):
            print(json.dumps({
                "case": f"log_{args.points}_points_{k}_per_row", "writer": name, "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3), "cpu_ratio_vs_plain": round(cpu / plain[1], 2),
                "points_per_s": round(args.points / wall), "peak_rss_mb": round(peak / 1024, 1),
                "rss_growth_mb": round(growth / 1024, 1),
                "ratio_vs_plain": round(wall / plain[0], 2), "goal_s": 1.0, "goal_met": wall <= 1.0 if name != "plain_jsonl" else None,
            }))
        print(json.dumps(multi_process(root, args.procs, args.proc_rows)))


if __name__ == "__main__":
    main()
