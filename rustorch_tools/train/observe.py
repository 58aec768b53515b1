"""What the trainer measures: step phases, fallback ops, allocator stats, and a timeline.

The timeline is a list of spans (name, category, start, duration, args) in wall-clock
microseconds; the trainer stores it as the run artifact `timeline-<session>.jsonl` (a resumed
run adds a file, it never rewrites an older session's), which `rustorch-tools trace` turns
into Chrome Trace Event JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

PHASES = ("data", "forward", "backward", "optimizer")
TIMELINE_PREFIX = "timeline-"  # artifacts timeline-<session>.jsonl, one per fit/evaluate session


def synchronize(device: torch.device) -> None:
    """Wait for queued work so that a phase's time is its own (no-op on CPU)."""
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


class StepClock:
    """Seconds spent in each phase of one step; `phase(name)` times a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.starts: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        self.starts.setdefault(name, time.time())
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] += time.perf_counter() - t0


def fallback_counts() -> dict[str, int] | None:
    """Per-op fallback call counts of the rustorch device (None when it is not built)."""
    try:
        from rustorch_device.fallback import op_stats
    except ImportError:
        return None
    return {op: c["fallback"] for op, c in op_stats().items() if c.get("fallback")}


def fallback_delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int]:
    if before is None or after is None:
        return {}
    return {op: n - before.get(op, 0) for op, n in sorted(after.items()) if n - before.get(op, 0)}


def allocator_stats(device: torch.device) -> dict[str, float]:
    """Current/peak allocated and reserved bytes of an accelerator's allocator ({} on CPU)."""
    if device.type == "cpu":
        return {}
    acc = torch.accelerator
    index = device.index if device.index is not None else acc.current_device_index()
    return {
        "memory/allocated_bytes": float(acc.memory_allocated(index)),
        "memory/max_allocated_bytes": float(acc.max_memory_allocated(index)),
        "memory/reserved_bytes": float(acc.memory_reserved(index)),
    }


class Timeline:
    """Spans recorded during fit/evaluate, in microseconds since the epoch."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.spans: list[dict[str, Any]] = []
        self.session = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"

    def add(self, name: str, cat: str, start_s: float, dur_s: float, **args: Any) -> None:
        if self.enabled:
            self.spans.append({"name": name, "cat": cat, "ts": round(start_s * 1e6, 3),
                               "dur": round(dur_s * 1e6, 3), "args": args})

    @contextmanager
    def span(self, name: str, cat: str, **args: Any) -> Iterator[dict[str, Any]]:
        start, t0 = time.time(), time.perf_counter()
        extra: dict[str, Any] = {}
        try:
            yield extra
        finally:
            self.add(name, cat, start, time.perf_counter() - t0, **args, **extra)

    def store(self, run: Any) -> None:
        """Write the spans as the run artifact timeline-<session>.jsonl (this session's only)."""
        if not self.enabled or run is None or not self.spans:
            return
        with tempfile.TemporaryDirectory(prefix="rustorch-timeline-") as tmp:
            path = Path(tmp) / f"{TIMELINE_PREFIX}{self.session}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for span in self.spans:
                    f.write(json.dumps(span, allow_nan=False, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
            run.log_artifact(path, overwrite=True)
