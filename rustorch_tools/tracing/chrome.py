"""Runs and pipelines as one Chrome Trace Event timeline (chrome://tracing, Perfetto).

Layout: a pipeline is process 1 with one row per stage instance (a span from its run's start
to its end); each run is its own process with rows for epochs, steps, step phases,
evaluation + checkpoints, and the torch.profiler operator events when the run recorded a
profile — all on one clock (wall time; the profiler's events are shifted by its
`baseTimeNanoseconds`). Timestamps are microseconds from the earliest event; the origin
(Unix µs) is in `otherData.origin_unix_us`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..pipeline import runview

TIMELINE_PREFIX = "timeline-"
PROFILE_SUFFIX = ".trace.json"
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
ROWS = {"epoch": (1, "epochs"), "step": (2, "steps"), "phase": (3, "step phases"),
        "eval": (4, "evaluation + checkpoints"), "checkpoint": (4, "evaluation + checkpoints"),
        "profile": (5, "profiled steps"), "ops": (6, "profiler: operators")}


class TraceSourceError(Exception):
    """Something named on the command line that cannot be traced (the message says why)."""


def _meta(pid: int, name: str, rows: dict[int, str]) -> list[dict[str, Any]]:
    out = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}]
    out += [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": label}}
            for tid, label in sorted(rows.items())]
    return out


def _timeline_events(run_dir: Path, pid: int, warnings: list[str]) -> list[dict[str, Any]]:
    events = []
    for name in runview.artifact_names(run_dir, TIMELINE_PREFIX):
        try:
            lines = runview.read_artifact(run_dir, name, MAX_ARTIFACT_BYTES).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError, RustorchToolsError) as exc:
            warnings.append(f"{name}: {exc}, skipped")
            continue
        for n, line in enumerate(lines, 1):
            try:
                span = json.loads(line)
                tid = ROWS[span["cat"]][0]
                events.append({"ph": "X", "name": str(span["name"]), "cat": span["cat"], "pid": pid,
                               "tid": tid, "ts": float(span["ts"]), "dur": max(float(span["dur"]), 0.0),
                               "args": span.get("args") if isinstance(span.get("args"), dict) else {}})
            except (ValueError, KeyError, TypeError, RecursionError):
                warnings.append(f"{name} line {n}: not a span, skipped")
    return events


def _profile_events(run_dir: Path, pid: int, warnings: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in runview.artifact_names(run_dir):
        if not name.endswith(PROFILE_SUFFIX):
            continue
        try:
            doc = json.loads(runview.read_artifact(run_dir, name, MAX_ARTIFACT_BYTES))
            base_us = float(doc.get("baseTimeNanoseconds", 0)) / 1000.0
            for e in doc.get("traceEvents", []):
                if e.get("ph") != "X" or not isinstance(e.get("ts"), int | float):
                    continue
                out.append({"ph": "X", "name": str(e.get("name", "?")), "cat": f"profiler:{e.get('cat', '')}",
                            "pid": pid, "tid": ROWS["ops"][0], "ts": base_us + float(e["ts"]),
                            "dur": max(float(e.get("dur", 0.0)), 0.0),
                            "args": {"artifact": name, **(e.get("args") or {})}})
        except (OSError, ValueError, AttributeError, TypeError, RecursionError, RustorchToolsError) as exc:
            warnings.append(f"{name}: unreadable profiler trace ({exc}), skipped")
    return out


def _instant_events(run_dir: Path, pid: int, warnings: list[str]) -> list[dict[str, Any]]:
    """Lifecycle events from events.jsonl (created, resumed, finished, ...), as instants."""
    out = []
    try:
        for e in runview.events(run_dir):
            if e.get("event") == "checkpointed":
                continue  # the timeline has the save with its duration
            out.append({"ph": "i", "s": "p", "name": str(e.get("event")), "cat": "run", "pid": pid, "tid": 0,
                        "ts": float(e["time"]) * 1e6, "args": e.get("detail") or {}})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.append(f"{run_dir.name}: events unreadable ({exc})")
    return out


def run_events(runs_dir: Path, run_id: str, pid: int, warnings: list[str]) -> list[dict[str, Any]]:
    doc = runview.read(runs_dir, run_id)
    if doc is None:
        raise TraceSourceError(f"run {run_id!r} not found (or unreadable) under {runs_dir}")
    directory = runview.run_dir(runs_dir, run_id)
    events = _timeline_events(directory, pid, warnings) + _profile_events(directory, pid, warnings)
    events += _instant_events(directory, pid, warnings)
    used = {e["tid"] for e in events}
    rows = {tid: label for tid, label in ROWS.values() if tid in used}
    return _meta(pid, f"run {doc.get('name') or run_id} ({run_id})", rows) + events


def pipeline_events(runs_dir: Path, state: dict[str, Any], warnings: list[str]) -> list[dict[str, Any]]:
    """The pipeline row (pid 1, one thread per instance) and every stage run's own events."""
    instances = list(state.get("instances", {}).values())
    events = _meta(1, f"pipeline {state.get('pipeline')}", {i + 1: inst["id"] for i, inst in enumerate(instances)})
    for i, inst in enumerate(instances):
        run_id = inst.get("run_id")
        doc = runview.read(runs_dir, run_id) if run_id else None
        if doc is None:
            warnings.append(f"stage {inst['id']}: no run ({inst.get('status')})")
            continue
        start, end = doc.get("started_at") or doc.get("created_at"), doc.get("ended_at") or doc.get("heartbeat_at")
        events.append({"ph": "X", "name": inst["id"], "cat": "stage", "pid": 1, "tid": i + 1,
                       "ts": float(start) * 1e6, "dur": max(float(end) - float(start), 0.0) * 1e6,
                       "args": {"run_id": run_id, "status": inst.get("status"), "attempts": inst.get("attempts")}})
        events += run_events(runs_dir, run_id, i + 2, warnings)
    return events


def to_trace(events: list[dict[str, Any]], title: str, warnings: list[str]) -> dict[str, Any]:
    """The Chrome trace document: timestamps rebased to the earliest event."""
    timed = [e["ts"] for e in events if "ts" in e]
    origin = min(timed) if timed else 0.0
    for e in events:
        if "ts" in e:
            e["ts"] = round(e["ts"] - origin, 3)
        if "dur" in e:
            e["dur"] = round(e["dur"], 3)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"title": title, "origin_unix_us": origin, "warnings": warnings}}
