"""What the kernel benchmarks share: the interleaved timing loop and the case-selection CLI.

Scripts in this folder run as `python benchmarks/<name>.py`, so this module is importable as
`harness` from them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

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
