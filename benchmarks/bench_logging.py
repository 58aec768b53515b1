"""Logging throughput: 1,000,000 metric points through `Run.log_metrics` (one call per row),
`Run.log_batch` (rows) and `Run.log_columns` (columns) next to plain JSONL writers
(json.dumps / orjson.dumps + buffered write, no CRC, no locking) in the same run; reading
them back with `read_metrics` next to a plain json.loads loop; then the stress case,
8 processes x 10,000 rows into one run, checked row by row.

    python benchmarks/bench_logging.py [--points 1000000] [--metrics-per-row 10]

Prints one JSON line per case (benchmarks/harness.py conventions): `s` wall seconds of the
whole case in a fresh process (start_run and finish included; numpy is imported before the
process forks, as in any program that holds numpy arrays or torch), `cpu_s`, peak RSS, and
`ratio` = ours / the plain `json.dumps` writer (lower is better); the log_batch line's
`inputs_s` is the part of its `s` that the caller spends building the row dicts. Goal
(issue 12): 1M points in <= 0.3 s (`goal_s`; benchmarks/summary.py lists it) for the batch
calls. Every line
carries the load average and thread count: numbers from a loaded machine are preliminary.
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
from queue import Empty

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import numpy  # noqa: E402,F401  the caller's library: imported before the timed children fork

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


def plain_orjson_writer(root: Path, rows: int, k: int) -> None:
    import orjson

    names = _names(k)
    with open(root / "plain-orjson.jsonl", "wb") as fh:
        for step in range(rows):
            row = {"step": step, "time": time.time()}
            for i, name in enumerate(names):
                row[name] = step * 0.001 + i
            fh.write(orjson.dumps(row) + b"\n")


def rustorch_batch_writer(root: Path, rows: int, k: int) -> None:
    names = _names(k)
    with rustorch_tools.start_run(root, name="bench-batch") as run:
        for first in range(0, rows, 1000):
            run.log_batch([{name: step * 0.001 + i for i, name in enumerate(names)}
                           for step in range(first, min(rows, first + 1000))], start_step=first)


def batch_inputs_only(root: Path, rows: int, k: int) -> None:
    """What rustorch_batch_writer's caller spends building its dicts, without logging them."""
    names = _names(k)
    for first in range(0, rows, 1000):
        _ = [{name: step * 0.001 + i for i, name in enumerate(names)}
             for step in range(first, min(rows, first + 1000))]


def rustorch_columns_writer(root: Path, rows: int, k: int) -> None:
    import numpy as np

    names = _names(k)
    with rustorch_tools.start_run(root, name="bench-columns") as run:
        for first in range(0, rows, 10_000):
            steps = np.arange(first, min(rows, first + 10_000))
            run.log_columns({name: steps * 0.001 + i for i, name in enumerate(names)})


def plain_reader(root: Path, rows: int, k: int) -> None:
    cols: dict[str, list] = {}
    with open(root / "plain.jsonl", "rb") as fh:
        for line in fh:
            for key, value in json.loads(line).items():
                cols.setdefault(key, []).append(value)


def rustorch_reader(root: Path, rows: int, k: int) -> None:
    (run_dir,) = [p for p in root.iterdir() if p.name.endswith(tuple("0123456789abcdef"))
                  and "-bench-" in p.name and "batch" not in p.name and "columns" not in p.name]
    rustorch_tools.read_metrics(run_dir, as_pandas=False)


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
    while True:  # a child that dies (an exception) must not leave us waiting forever
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{fn.__name__} failed (exit code {proc.exitcode})") from None
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
        cases = (("plain_jsonl", plain), ("plain_orjson", measure(plain_orjson_writer, root, rows, k)),
                 ("log_metrics", measure(rustorch_writer, root, rows, k)),
                 ("log_batch", measure(rustorch_batch_writer, root, rows, k)),
                 ("log_columns", measure(rustorch_columns_writer, root, rows, k)))
        batch_inputs = measure(batch_inputs_only, root, rows, k)
        for name, (wall, cpu, peak, growth) in cases:
            row = {
                "case": f"log_{args.points}_points_{k}_per_row_{name}", "group": "logging",
                "impl": name, "s": round(wall, 3), "cpu_s": round(cpu, 3),
                "ratio": round(wall / plain[0], 3), "reference": "plain_jsonl",
                "cpu_ratio": round(cpu / plain[1], 3), "points_per_s": round(args.points / wall),
                "peak_rss_mb": round(peak / 1024, 1), "rss_growth_mb": round(growth / 1024, 1),
            }
            if name in ("log_batch", "log_columns"):
                row["goal_s"] = 0.3
            if name == "log_batch":  # the share of `s` that the caller spends building dicts
                row["inputs_s"] = round(batch_inputs[0], 3)
            harness.emit(row)
        plain_read = measure(plain_reader, root, rows, k)
        ours_read = measure(rustorch_reader, root, rows, k)
        for name, (wall, cpu, peak, _) in (("plain_json_loads", plain_read), ("read_metrics", ours_read)):
            harness.emit({
                "case": f"read_{args.points}_points_as_columns_{name}", "group": "logging",
                "impl": name, "s": round(wall, 3), "cpu_s": round(cpu, 3),
                "ratio": round(wall / plain_read[0], 3), "reference": "plain_json_loads",
                "peak_rss_mb": round(peak / 1024, 1),
            })
        harness.emit({**multi_process(root, args.procs, args.proc_rows), "group": "logging"})


if __name__ == "__main__":
    main()
