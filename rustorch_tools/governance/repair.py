"""`repair`: fix what is recoverable, keep every byte, audit each change with digests.

Repairs (only on runs that are not live):
- `cut_torn`: a torn last line of metrics.jsonl / events.jsonl is moved into
  `<file>.<unix time>.orphan` next to it (written and fsynced first), then the file is
  truncated to its last newline, under the same flock writers take to append;
- `mark_crashed`: `running` with a stale heartbeat becomes `crashed` (`ended_at` = last
  heartbeat) and a `crashed` event is appended;
- `migrate`: run.json of an older schema version is rewritten as the current version;
- `rebuild_manifest`: a missing manifest.json is rebuilt from the files present, every entry
  `verified: false`;
- `regenerate_summary`: run.json's summary is recomputed from the valid metric rows.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RustorchToolsError
from ..store import jsonl, layout, manifest, runs
from ..store.atomic import atomic_write_bytes, fsync_dir
from ..store.jsonl import nonfinite_text
from . import audit
from .jsonl_check import check_metric_row
from .locks import governance_lock
from .run_check import ORPHAN_SUFFIX, RunResult, summary_metrics
from .validate import ValidationReport, validate_runs


@dataclass
class Action:
    run_id: str
    action: str
    file: str  # relative to RUNS_DIR
    detail: dict = field(default_factory=dict)
    before_sha256: str | None = None
    after_sha256: str | None = None
    done: bool = False
    error: str | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "action": self.action, "file": self.file,
                "detail": self.detail, "before_sha256": self.before_sha256,
                "after_sha256": self.after_sha256, "done": self.done, "error": self.error}


@dataclass
class RepairOutcome:
    report: ValidationReport
    actions: list[Action] = field(default_factory=list)
    dry_run: bool = False

    @property
    def failed(self) -> list[Action]:
        return [a for a in self.actions if a.error]

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "actions": [a.to_dict() for a in self.actions]}


def _digest(path: Path) -> str | None:
    if not path.is_file() or path.is_symlink():
        return None
    return manifest.sha256_file(path)


def plan(res: RunResult) -> list[Action]:
    """The repairs `res` calls for, in the order they are applied."""
    if res.live:
        return []
    acts: list[Action] = []
    for name, offset in sorted(res.torn.items()):
        acts.append(Action(res.folder, "cut_torn", f"{res.rel}/{name}", {"offset": offset}))
    rj = f"{res.rel}/{layout.RUN_JSON}"
    if res.schema_from is not None:
        acts.append(Action(res.folder, "migrate", rj, {"from_version": res.schema_from}))
    if res.stale:
        acts.append(Action(res.folder, "mark_crashed", rj))
    if res.summary_stale or (res.torn.get(layout.METRICS) is not None):
        acts.append(Action(res.folder, "regenerate_summary", rj))
    if res.manifest_missing:
        acts.append(Action(res.folder, "rebuild_manifest", f"{res.rel}/{layout.MANIFEST}"))
    return acts


def _cut_torn(path: Path, offset: int) -> dict:
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # writers append under this same lock
        size = os.fstat(fd).st_size
        tail = os.pread(fd, size - offset, offset) if size > offset else b""
        if not tail or b"\n" in tail:
            raise RustorchToolsError("the file changed since validation; run repair again")
        orphan = path.with_name(f"{path.name}.{time.time():.6f}{ORPHAN_SUFFIX}")
        atomic_write_bytes(orphan, tail)  # fsynced before the bytes leave the file
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"orphan": orphan.name, "bytes": len(tail),
            "orphan_sha256": hashlib.sha256(tail).hexdigest()}


def summary_from_metrics(run_dir: Path) -> dict:
    """The writer's summary rebuilt from the valid rows (streamed): last value of every
    metric (non-finite as "nan"/"inf"/"-inf", run.json refuses NaN) and the last step."""
    metrics: dict = {}
    step = None
    for raw in jsonl.iter_valid_rows(run_dir / layout.METRICS):
        problem = check_metric_row(raw)
        if problem is not None and problem[0] != "RT205":
            continue  # rows validation rejects do not count (same rule as RT404)
        row = jsonl.restore_nonfinite(raw)
        metrics.update(summary_metrics(row))
        s = row.get("step")
        if isinstance(s, int) and (step is None or s > step):
            step = s
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            metrics[key] = nonfinite_text(value)
    out: dict = {"metrics": metrics, "updated_at": time.time()}
    if step is not None:
        out["step"] = step
    return out


def _rebuild_manifest(run_dir: Path) -> dict:
    doc = manifest.empty_manifest()
    now = time.time()
    pointer = f"{layout.CHECKPOINTS}/{layout.LATEST}"
    for rel in manifest.tracked_files(run_dir):
        path = run_dir / rel
        if rel == pointer or path.is_symlink() or not path.is_file():
            continue
        if layout.is_temp_name(path.name):
            continue
        doc["files"][rel] = {"sha256": manifest.sha256_file(path),
                             "size": path.stat().st_size, "added_at": now, "verified": False}
    with runs.run_lock(run_dir):
        if (run_dir / layout.MANIFEST).exists():
            raise RustorchToolsError("manifest.json appeared since validation; not replaced")
        manifest.write_manifest(run_dir, doc)
    return {"files": len(doc["files"])}


def _apply_run_json(run_dir: Path, acts: list[Action]) -> None:
    names = {a.action for a in acts}
    summary = summary_from_metrics(run_dir) if "regenerate_summary" in names else None

    def change(doc: dict) -> None:
        if "mark_crashed" in names and doc.get("status") == "running":
            doc["status"] = "crashed"
            if doc.get("ended_at") is None:
                beat = doc.get("heartbeat_at")
                doc["ended_at"] = beat if isinstance(beat, int | float) else time.time()
        if summary is not None:
            doc["summary"] = summary

    runs.update_run(run_dir, change)


def apply(runs_dir: Path, res: RunResult, acts: list[Action]) -> None:
    run_dir = runs_dir / res.folder
    for a in acts:
        a.before_sha256 = _digest(runs_dir / a.file)
    try:
        for a in (a for a in acts if a.action == "cut_torn"):
            a.detail.update(_cut_torn(runs_dir / a.file, a.detail["offset"]))
            a.done = True
        rj = [a for a in acts if a.file.endswith("/" + layout.RUN_JSON)]
        if rj:
            _apply_run_json(run_dir, rj)
            for a in rj:
                a.done = True
            if any(a.action == "mark_crashed" for a in rj):
                runs.append_event(run_dir, "crashed", {"by": "rustorch-tools repair"})
            if any(a.action == "migrate" for a in rj):
                runs.append_event(run_dir, "migrated", {"from_version": res.schema_from})
        for a in (a for a in acts if a.action == "rebuild_manifest"):
            a.detail.update(_rebuild_manifest(run_dir))
            a.done = True
    except (RustorchToolsError, OSError, ValueError) as e:
        for a in acts:
            if not a.done:
                a.error = f"{type(e).__name__}: {e}"
    for a in acts:
        a.after_sha256 = _digest(runs_dir / a.file)
    done = [a.action for a in acts if a.done]
    if done:
        try:
            runs.append_event(run_dir, "repaired", {"actions": done})
        except (RustorchToolsError, OSError):
            pass  # the audit entry is the authoritative record


def repair_runs(runs_dir: Path, dry_run: bool = False, jobs: int | None = None,
                lock_timeout: float | None = None) -> RepairOutcome:
    runs_dir = Path(runs_dir)
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    # A dry run reads only, so it does not take (or create) the lock.
    with nullcontext() if dry_run else governance_lock(runs_dir, **kw):
        report = validate_runs(runs_dir, jobs=jobs)
        out = RepairOutcome(report, dry_run=dry_run)
        for res in report.runs:
            acts = plan(res)
            if not acts:
                continue
            if not dry_run:
                apply(runs_dir, res, acts)
            out.actions.extend(acts)
        if not dry_run:
            fsync_dir(runs_dir)
            audit.append(runs_dir, "repair", {"actions": [a.to_dict() for a in out.actions]})
    return out
