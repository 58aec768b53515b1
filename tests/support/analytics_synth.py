"""Synthetic run folders for tests and benchmarks, written through the store.

The folders follow docs/runs-format.md exactly (run.json validated against its schema,
CRC-framed metric lines); nothing here bypasses `rustorch_tools.store`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rustorch_tools.store import jsonl, layout, runs
from rustorch_tools.store.schema import SCHEMA_VERSION

ENVIRONMENT = {"python": "3.11.7", "torch": "2.14.1", "rustorch": "0.1.0", "git_commit": "0" * 40,
               "git_dirty": False, "hostname": "bench", "accelerator": "rustorch", "pid": 1}


def run_doc(run_id: str, *, name: str | None = None, status: str = "finished",
            started_at: float = 1_764_337_000.0, duration: float = 600.0,
            config: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
            seed: int | None = 1, tags: dict[str, str] | None = None,
            parent: dict[str, Any] | None = None, environment: dict[str, Any] | None = None,
            heartbeat_at: float | None = None) -> dict[str, Any]:
    ended = None if status == "running" else started_at + duration
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "name": name or run_id,
        "status": status, "created_at": started_at, "started_at": started_at, "ended_at": ended,
        "heartbeat_at": heartbeat_at if heartbeat_at is not None else (ended or started_at),
        "heartbeat_interval_s": 10.0, "config": config or {}, "params": params or {},
        "seed": seed, "tags": tags or {}, "parent": parent,
        "environment": dict(ENVIRONMENT if environment is None else environment),
        "error": {"type": "RuntimeError", "message": "boom"} if status == "failed" else None,
        "summary": {},
    }


def write_run(root: str | os.PathLike[str], doc: dict[str, Any],
              rows: Iterable[dict[str, Any]] = ()) -> Path:
    """Create the run folder for `doc`: run.json (with the summary a writer would keep),
    metrics.jsonl with `rows`, and events.jsonl (created, then finished/failed)."""
    rows = list(rows)
    d = layout.run_dir(root, doc["run_id"])
    d.mkdir(parents=True, exist_ok=False)
    if rows and not doc.get("summary"):
        latest: dict[str, Any] = {}
        for row in rows:
            latest.update({k: v for k, v in row.items()
                           if k not in ("step", "time", "rank") and not k.startswith("_")})
        doc = {**doc, "summary": {
            "metrics": {k: jsonl.nonfinite_text(v) if isinstance(v, float) and not math.isfinite(v)
                        else v for k, v in latest.items()},
            "step": max(r["step"] for r in rows if "step" in r),
            "updated_at": doc.get("ended_at") or doc.get("started_at"),
        }}
    runs.write_run(d, doc)
    runs.append_rows(d / layout.METRICS, rows)
    runs.append_event(d, "created", now=doc.get("created_at"))
    if doc.get("status") in ("finished", "failed"):
        runs.append_event(d, doc["status"], now=doc.get("ended_at"))
    return d


def training_rows(steps: int, *, start_time: float = 1_764_337_000.0, lr: float = 0.1,
                  final_acc: float = 0.95, step_time_ms: float = 12.0, noise: float = 0.0,
                  every: int = 1, device: bool = False) -> list[dict[str, Any]]:
    """Smooth loss/accuracy curves (deterministic; `noise` adds a fixed wobble)."""
    out = []
    for s in range(0, steps, every):
        frac = s / max(steps - 1, 1)
        wobble = noise * math.sin(s * 1.7)
        row: dict[str, Any] = {
            "step": s, "time": start_time + s * step_time_ms / 1000.0,
            "loss": 2.3 * math.exp(-5.0 * lr * 10 * frac) + 0.05 + wobble,
            "val_acc": final_acc * (1 - math.exp(-6.0 * frac)) + wobble / 10,
            "step_time_ms": step_time_ms * (1 + 0.01 * math.cos(s)),
        }
        if device and s % 100 == 0:
            # The names Run.log_device_telemetry writes (docs/logging.md).
            row["device/ops/aten::mm/native"] = s // 100 * 3
            row["device/ops/aten::mm/fallback"] = 0
            row["device/memory/max_allocated_bytes"] = 1_000_000 + s
        out.append(row)
    return out


def lineage_runs(root: str | os.PathLike[str], steps: int = 200) -> dict[str, Path]:
    """A small family of runs: base → fork (lr changed) → resume, base → finetune,
    a rerun of base's config, and a failed run. Start times one hour apart."""
    t0 = 1_764_300_000.0
    cfg = {"lr": 0.1, "model": {"depth": 4, "width": 64}, "optim": "sgd"}
    fork_cfg = {**cfg, "lr": 0.05}
    ft_cfg = {**cfg, "model": {"depth": 4, "width": 64, "head": "new"}}
    specs: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = [
        ("base", cfg, None, {"final_acc": 0.95}),
        ("fork", fork_cfg, {"run_id": "base", "relation": "fork", "checkpoint": "ckpt-100"},
         {"final_acc": 0.96, "lr": 0.05}),
        ("resume", fork_cfg, {"run_id": "fork", "relation": "resume", "checkpoint": None},
         {"final_acc": 0.961, "lr": 0.05}),
        ("finetune", ft_cfg, {"run_id": "base", "relation": "finetune", "checkpoint": "ckpt-200"},
         {"final_acc": 0.97, "step_time_ms": 15.0}),
        ("rerun", cfg, None, {"final_acc": 0.949}),
    ]
    out = {}
    for i, (rid, config, parent, curve) in enumerate(specs):
        started = t0 + 3600.0 * i
        doc = run_doc(rid, config=config, parent=parent, started_at=started)
        out[rid] = write_run(root, doc, training_rows(steps, start_time=started, **curve))
    failed = run_doc("failed", status="failed", config={**cfg, "lr": 1.0}, started_at=t0 + 3600 * 5)
    out["failed"] = write_run(root, failed, training_rows(steps // 4, lr=1.0, final_acc=0.1))
    return out
