"""Synthetic run folders for tests and benchmarks, written through the store's encoders.

`make_run` writes a complete, valid run; the callers then damage it on purpose.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from rustorch_tools.governance.repair import summary_from_metrics
from rustorch_tools.store import layout
from rustorch_tools.store.atomic import atomic_write_bytes, atomic_write_json
from rustorch_tools.store.jsonl import encode_row


def metric_rows(n: int, start_time: float = 1764337000.0, step0: int = 0) -> bytes:
    """`n` valid metrics.jsonl lines (step, time, loss, acc)."""
    return b"".join(encode_row({"step": step0 + i, "time": start_time + i * 0.5,
                                "loss": 1.0 / (i + 1), "acc": min(1.0, i / (n or 1))})
                    for i in range(n))


def run_doc(run_id: str, status: str = "finished", now: float | None = None,
            parent: str | None = None, summary: dict | None = None) -> dict:
    now = time.time() if now is None else now
    return {
        "schema_version": 1, "run_id": run_id, "name": "synthetic", "status": status,
        "created_at": now - 100, "started_at": now - 100,
        "ended_at": None if status == "running" else now - 1,
        "heartbeat_at": now - 1, "heartbeat_interval_s": 10.0,
        "config": {}, "params": {"lr": 0.1}, "seed": 1, "tags": {},
        "parent": None if parent is None else {"run_id": parent, "relation": "fork",
                                               "checkpoint": None},
        "environment": {"python": "3.11", "hostname": "synth", "pid": 1},
        "error": {"type": "RuntimeError", "message": "boom"} if status == "failed" else None,
        "summary": summary if summary is not None else {},
    }


def make_run(root: Path, run_id: str, rows: int = 20, status: str = "finished",
             now: float | None = None, parent: str | None = None,
             checkpoint: bytes | None = b"weights", metrics: bytes | None = None) -> Path:
    """A valid run with `rows` metric rows, two events and (optionally) one checkpoint."""
    now = time.time() if now is None else now
    d = Path(root) / run_id
    d.mkdir(parents=True)
    data = metric_rows(rows) if metrics is None else metrics
    (d / layout.METRICS).write_bytes(data)
    summary = summary_from_metrics(d) if data else {}
    events = [encode_row({"time": now - 100, "event": "created"})]
    if status in ("finished", "failed"):
        events.append(encode_row({"time": now - 1, "event": status}))
    (d / layout.EVENTS).write_bytes(b"".join(events))
    atomic_write_json(d / layout.RUN_JSON, run_doc(run_id, status, now, parent, summary))
    files = {}
    if checkpoint is not None:
        (d / layout.CHECKPOINTS).mkdir()
        rel = f"{layout.CHECKPOINTS}/ckpt-00000001.pt"
        atomic_write_bytes(d / rel, checkpoint)
        files[rel] = {"sha256": hashlib.sha256(checkpoint).hexdigest(), "size": len(checkpoint),
                      "added_at": now - 2, "verified": True}
    atomic_write_json(d / layout.MANIFEST, {"schema_version": 1, "files": files})
    return d
