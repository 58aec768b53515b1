"""What every benchmark shares: the interleaved timing loops, the case-selection CLI and the
JSON line each case prints (with the load average and thread count it was measured under).

Conventions: ratio = ours / reference (lower is better); a row with a "goal" is met when
ratio <= goal; benchmarks/summary.py turns the rows into the goal table of docs/performance.md.
Scripts in this folder run as `python benchmarks/<name>.py`, so this module is importable as
`harness` from them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

Fn = Callable[[], object]


class _NamedCase(Protocol):
    name: str
    group: str


C = TypeVar("C", bound=_NamedCase)


def measure(ours_fn: Fn, aten_fn: Fn, reps: int, min_time: float) -> tuple[list[float], list[float]]:
    """Seconds per call of each side, one sample per repetition, interleaved so that machine
    noise hits both alike."""
    for _ in range(2):
        ours_fn()
        aten_fn()
    # Several calls per sample for fast cases, so each sample lasts at least min_time.
    t0 = time.perf_counter()
    aten_fn()
    inner = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    ours, theirs = [], []
    for _ in range(reps):
        for fn, out in ((ours_fn, ours), (aten_fn, theirs)):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t0) / inner)
    return ours, theirs


def race(cases: Mapping[str, Fn], repeat: int) -> dict[str, list[float]]:
    """Seconds of each call of each case, `repeat` rounds in which the cases take turns, so a
    shared machine's load and the page cache hit them alike (for slow, one-shot cases)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def _threads() -> int:
    """torch's intra-op threads when torch is loaded; else the CPUs this process may use (a
    benchmark of pure-Python tools does not import torch just to say so: it costs ~300 MB)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return len(os.sched_getaffinity(0))


def context() -> dict[str, Any]:
    """What a number was measured under: intra-op threads and the 1/5/15-minute load average."""
    return {
        "threads": _threads(),
        "load_avg": [round(v, 2) for v in os.getloadavg()],
    }


def emit(row: Mapping[str, Any]) -> None:
    """Prints one JSON line: context() plus the row (a row that ran its work in other processes
    states their `threads` itself)."""
    print(json.dumps({**context(), **row}), flush=True)


def ratio_row(
    case: str,
    group: str,
    ours: Sequence[float],
    reference: Sequence[float],
    goal: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The standard row of an ours-vs-reference case from per-sample seconds (medians)."""
    o, r = statistics.median(ours), statistics.median(reference)
    row: dict[str, Any] = {
        "case": case,
        "group": group,
        "rustorch_ms": round(o * 1e3, 4),
        "reference_ms": round(r * 1e3, 4),
        "ratio": round(o / r, 3),
    }
    if goal is not None:
        row["goal"] = goal
    row.update(extra)
    return row


def parse_args(doc: str | None, argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated groups or case names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.02, help="seconds per sample")
    return parser, parser.parse_args(argv)


def select(cases: Sequence[C], only: str, parser: argparse.ArgumentParser) -> list[C]:
    wanted = {w for w in only.split(",") if w}
    selected = [c for c in cases if not wanted or c.group in wanted or c.name in wanted]
    if not selected:
        parser.error(f"no case matches --only {only!r}")
    return selected
