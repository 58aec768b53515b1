"""`quarantine` and `release`: move runs aside and back, by atomic renames only.

Both run under the RUNS_DIR governance lock, re-validate inside it (so two concurrent commands
see each other's moves) and never delete anything: the quarantine record of a released run is
renamed into `.audit/released/`.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RustorchToolsError
from ..store import layout, runs
from ..store.atomic import atomic_write_json, fsync_dir
from . import audit
from .findings import Severity
from .locks import governance_lock
from .run_check import QUARANTINE_FILE, RunResult, check_run
from .validate import ValidationReport, validate_one, validate_runs

RELEASED_DIR = "released"  # under .audit/: quarantine records of released runs


@dataclass
class Move:
    run_id: str
    source: str  # relative to RUNS_DIR
    target: str
    codes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "from": self.source, "to": self.target,
                "codes": self.codes}


@dataclass
class QuarantineOutcome:
    report: ValidationReport
    moved: list[Move] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "moved": [m.to_dict() for m in self.moved],
                "skipped": self.skipped}


def _still_live(run_dir: Path) -> bool:
    """Re-read the heartbeat right before a move (the validation pass may be minutes old)."""
    try:
        doc = runs.read_run(run_dir, validate=False)
    except (RustorchToolsError, OSError, ValueError, RecursionError):
        return False
    return doc.get("status") == "running" and not _stale(doc)


def _stale(doc: dict) -> bool:
    try:
        return runs.is_stale(doc)
    except (TypeError, ValueError):
        return True


def _record(res: RunResult, now: float) -> dict:
    remediation = sorted({f.info.remediation for f in res.findings
                          if f.severity == Severity.ERROR})
    return {"schema_version": 1, "run_id": res.run_id or res.folder, "folder": res.folder,
            "quarantined_at": now, **audit.who(),
            "findings": [f.to_dict() for f in res.findings], "remediation": remediation}


def quarantine_runs(runs_dir: Path, dry_run: bool = False, jobs: int | None = None,
                    lock_timeout: float | None = None) -> QuarantineOutcome:
    """Move every non-live run with error findings to `.quarantine/<folder>/`."""
    runs_dir = Path(runs_dir)
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    # A dry run reads only, so it does not take (or create) the lock.
    with nullcontext() if dry_run else governance_lock(runs_dir, **kw):
        report = validate_runs(runs_dir, jobs=jobs)
        out = QuarantineOutcome(report, dry_run=dry_run)
        qdir = runs_dir / layout.QUARANTINE_DIR
        for res in report.runs:
            if not res.has_errors:
                continue
            codes = sorted({f.code for f in res.findings if f.severity == Severity.ERROR})
            src = runs_dir / res.folder
            dst = qdir / res.folder
            if res.live or _still_live(src):
                out.skipped.append({"run_id": res.folder, "reason": "live run (fresh "
                                    "heartbeat): never quarantined", "codes": codes})
                continue
            if os.path.lexists(dst):
                out.skipped.append({"run_id": res.folder, "reason": "a quarantined run with "
                                    "this folder name already exists", "codes": codes})
                continue
            move = Move(res.folder, res.folder, f"{layout.QUARANTINE_DIR}/{res.folder}", codes)
            if dry_run:
                out.moved.append(move)
                continue
            if not qdir.exists():
                qdir.mkdir()
                fsync_dir(runs_dir)
            now = time.time()
            # rename() onto an existing empty folder would succeed silently; the lexists
            # check above under the governance lock rules that out.
            os.rename(src, dst)
            fsync_dir(runs_dir)
            fsync_dir(qdir)
            atomic_write_json(dst / QUARANTINE_FILE, _record(res, now))
            out.moved.append(move)
        if not dry_run:
            audit.append(runs_dir, "quarantine", {
                "moved": [m.to_dict() for m in out.moved], "skipped": out.skipped,
                "summary": report.summary()})
    return out


@dataclass
class ReleaseOutcome:
    run_id: str
    released: bool
    result: RunResult | None
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "released": self.released, "reason": self.reason,
                "findings": [f.to_dict() for f in (self.result.findings if self.result else [])]}


class ReleaseError(RustorchToolsError):
    """The run is not in quarantine, or a run with its id is back in RUNS_DIR (usage error)."""


def release_run(runs_dir: Path, run_id: str,
                lock_timeout: float | None = None) -> ReleaseOutcome:
    """Move `.quarantine/<run_id>` back to RUNS_DIR if it validates without errors."""
    runs_dir = Path(runs_dir)
    layout.validate_run_id(run_id)
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    with governance_lock(runs_dir, **kw):
        src = runs_dir / layout.QUARANTINE_DIR / run_id
        dst = runs_dir / run_id
        if src.is_symlink() or not src.is_dir():
            raise ReleaseError(f"{run_id!r} is not in {runs_dir / layout.QUARANTINE_DIR}")
        if os.path.lexists(dst):
            raise ReleaseError(f"{dst} already exists; rename one of the two runs first")
        res = validate_one(runs_dir, src, in_quarantine=True)
        errors = [f for f in res.findings if f.severity == Severity.ERROR]
        if errors:
            out = ReleaseOutcome(run_id, False, res, "the run still has errors")
        else:
            record = src / QUARANTINE_FILE
            if record.exists() or record.is_symlink():
                rdir = audit.audit_dir(runs_dir) / RELEASED_DIR
                rdir.mkdir(parents=True, exist_ok=True)
                kept = rdir / f"{run_id}.{time.time():.6f}.json"
                os.rename(record, kept)
                fsync_dir(rdir)
                fsync_dir(src)
            os.rename(src, dst)
            fsync_dir(runs_dir)
            fsync_dir(src.parent)
            try:
                runs.append_event(dst, "released", {"by": "rustorch-tools release"})
            except (RustorchToolsError, OSError):
                pass  # the audit entry below is the authoritative record
            out = ReleaseOutcome(run_id, True, check_run(dst, run_id))
        audit.append(runs_dir, "release", out.to_dict())
    return out
