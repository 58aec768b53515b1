"""Bringing a dead run's files back to a clean state (used by `repair` commands and tests).

Only for runs whose writers are gone: rewriting a JSONL file replaces its inode, so a live
writer could append to the old one. `repair_run` refuses a live run unless `force=True`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunStateError
from . import atomic, jsonl, layout, manifest, runs, schema

REJECTED_SUFFIX = ".rejected"


@dataclass
class JsonlRepair:
    """What repair_jsonl did to one file."""

    path: str
    kept: int = 0
    removed: list[int] = field(default_factory=list)  # line numbers cut out


def repair_jsonl(path: str | os.PathLike[str]) -> JsonlRepair:
    """Rewrite `path` keeping only valid complete lines (atomically).

    The removed lines (corrupt, torn tail) are appended verbatim to `<path>.rejected` so that
    nothing is destroyed. A file without bad lines is not touched.
    """
    path = Path(path)
    report = JsonlRepair(str(path))
    bad = [r for r in jsonl.scan(path) if r.row is None]
    if not bad:
        report.kept = sum(1 for _ in jsonl.scan(path))
        return report
    good: list[bytes] = []
    rejected: list[bytes] = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            complete = line.endswith(b"\n")
            try:
                if not complete:
                    raise ValueError
                jsonl.decode_line(line)
                good.append(line)
            except ValueError:
                rejected.append(line if complete else line + b"\n")
                report.removed.append(lineno)
    atomic.append_line(path.with_name(path.name + REJECTED_SUFFIX), b"".join(rejected))
    atomic.atomic_write_bytes(path, b"".join(good))
    report.kept = len(good)
    return report


def rebuild_manifest(run_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Drop entries of missing files, add untracked files (verified: false), delete temp files.

    Modified files keep their recorded digest (the evidence); `verify` keeps reporting them.
    """
    run_dir = Path(run_dir)
    found = manifest.verify(run_dir)
    done: dict[str, list[str]] = {"dropped": [], "added": [], "temp_removed": []}
    with runs.run_lock(run_dir):
        doc = manifest.read_manifest(run_dir)
        for m in found:
            if m.kind == "missing":
                doc["files"].pop(m.relpath, None)
                done["dropped"].append(m.relpath)
            elif m.kind == "untracked":
                path = run_dir / m.relpath
                doc["files"][m.relpath] = {
                    "sha256": manifest.sha256_file(path),
                    "size": path.stat().st_size,
                    "added_at": time.time(),
                    "verified": False,
                }
                done["added"].append(m.relpath)
            elif m.kind == "temp":
                (run_dir / m.relpath).unlink(missing_ok=True)
                done["temp_removed"].append(m.relpath)
        if done["dropped"] or done["added"]:
            manifest.write_manifest(run_dir, doc)
    return done


def repair_run(run_dir: str | os.PathLike[str], now: float | None = None, force: bool = False) -> dict[str, Any]:
    """Repair a dead run in place; returns a report (also stored in a `repaired` event).

    - run.json of an older schema is rewritten as the current one (`migrated` event);
    - a stale `running` run becomes `crashed`, ended at its last heartbeat (`crashed` event);
    - corrupt / torn lines of metrics.jsonl and events.jsonl move to `*.rejected`;
    - manifest.json is rebuilt for missing / untracked files; temp files are deleted.
    """
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    report: dict[str, Any] = {}
    with runs.run_lock(run_dir):
        raw = runs.read_run_raw(run_dir)
        doc, migrated_from = schema.migrate_run(raw)
        if doc.get("status") == "running" and not runs.is_stale(doc, now) and not force:
            raise RunStateError(
                f"run {doc.get('run_id')} is live (heartbeat {now - doc['heartbeat_at']:.0f} s ago); "
                "repair only dead runs (or pass force=True)"
            )
        events: list[tuple[str, dict[str, Any]]] = []
        if migrated_from is not None:
            report["migrated_from"] = migrated_from
            events.append(("migrated", {"from": migrated_from, "to": schema.SCHEMA_VERSION}))
        if doc.get("status") == "running":
            doc.update(status="crashed", ended_at=doc.get("heartbeat_at"))
            report["status"] = "crashed"
            events.append(("crashed", {"heartbeat_at": doc.get("heartbeat_at"), "found_at": now}))
        if migrated_from is not None or "status" in report:
            runs.write_run(run_dir, doc)
        for name in (layout.METRICS, layout.EVENTS):
            fixed = repair_jsonl(run_dir / name)
            if fixed.removed:
                report[name] = {"kept": fixed.kept, "removed_lines": fixed.removed}
        changes = rebuild_manifest(run_dir)
        if any(changes.values()):
            report["manifest"] = changes
        for event, detail in events:
            runs.append_event(run_dir, event, detail, now=now)
        if report:
            runs.append_event(run_dir, "repaired", report)
    return report
