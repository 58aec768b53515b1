"""Export metric rows (including device telemetry) as CSV or JSON, long or wide.

Long: one record per (row, metric): run_id, step, time, rank, metric, value.
Wide: one record per logged row: run_id, step, time, rank, then one column per metric.
Non-finite values are written as `nan` / `inf` / `-inf` (strings in JSON). Rows are
streamed run by run, so memory stays bounded by one row whatever the runs' size.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..store import runs as store_runs
from .jsonout import jsonable

# Device telemetry written by run.log_device_telemetry (docs/logging.md).
DEVICE_PATTERN = "device/*"
BASE_COLUMNS = ("run_id", "step", "time", "rank")


def parse_metric_patterns(text: str | None) -> list[str] | None:
    """`"loss,acc,device/*"` → patterns; None means every metric."""
    if text is None:
        return None
    pats = [p.strip() for p in text.split(",") if p.strip()]
    return pats or None


def select_metrics(names: Iterable[str], patterns: list[str] | None) -> list[str]:
    """Names matching any pattern (fnmatch), in pattern order then name order."""
    names = sorted(set(names))
    if patterns is None:
        return names
    out: list[str] = []
    for pat in patterns:
        for n in names:
            if n not in out and (n == pat or fnmatch.fnmatchcase(n, pat)):
                out.append(n)
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else _cell(v)
    return str(v)


def iter_records(run_dirs: Iterable[tuple[str, Path]], metrics: list[str], wide: bool
                 ) -> Iterator[dict[str, Any]]:
    """Records for the given (run_id, run_dir) pairs, only the selected metrics."""
    wanted = set(metrics)
    for run_id, run_dir in run_dirs:
        for row in store_runs.iter_metrics(run_dir):
            base = {"run_id": run_id, "step": row.get("step"), "time": row.get("time"),
                    "rank": row.get("rank")}
            present = [k for k in row if k in wanted]
            if not present:
                continue
            if wide:
                rec = dict(base)
                for k in present:
                    rec[k] = row[k]
                yield rec
            else:
                for k in present:
                    yield {**base, "metric": k, "value": row[k]}


def write_csv(out: IO[str], records: Iterable[dict[str, Any]], columns: list[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for rec in records:
        writer.writerow([_csv_cell(rec.get(c)) for c in columns])
        n += 1
    return n


def write_json(out: IO[str], records: Iterable[dict[str, Any]]) -> int:
    """A JSON array, one record per line (streamed, still one valid JSON document)."""
    out.write("[")
    n = 0
    for rec in records:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(jsonable(rec), allow_nan=False, separators=(",", ":")))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def export(out: IO[str], run_dirs: list[tuple[str, Path]], metrics: list[str], fmt: str,
           wide: bool) -> int:
    """Write the export; returns the number of records written."""
    records = iter_records(run_dirs, metrics, wide)
    if fmt == "csv":
        columns = [*BASE_COLUMNS, *metrics] if wide else [*BASE_COLUMNS, "metric", "value"]
        return write_csv(out, records, columns)
    if fmt == "json":
        return write_json(out, records)
    raise ValueError(f"unknown export format {fmt!r}")
