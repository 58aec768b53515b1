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
from ..store import audit, layout, runs
from ..store.runstore import QUARANTINE_FILE, RELEASED_DIR, RunStore
from .findings import Severity
from .run_check import RunResult, check_run
from .validate import ValidationReport, validate_one, validate_runs

__all__ = ["QUARANTINE_FILE", "RELEASED_DIR", "quarantine_runs", "release_run", "ReleaseError"]


@dataclass
class Move:
    run_id: str
    source: str  # relative to RUNS_DIR
    target: str
    codes: list[str] = field(default_factory=list)
    record_error: str | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "from": self.source, "to": self.target,
                "codes": self.codes, "record_error": self.record_error}


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
    """Move every non-live run with error findings to `.quarantine/<folder>/`.

    Each move is audited before it happens (write-ahead: an `intent` entry, then the rename),
    so a kill between the two leaves an audited intent, never an unaudited move.
    """
    store = RunStore(runs_dir)
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    # Refuse links before moving anything. A dry run reads only: it takes (creates) no lock.
    store.reserved(layout.QUARANTINE_DIR, create=False)
    store.reserved(layout.AUDIT_DIR, create=False)
    with nullcontext() if dry_run else store.tree_lock(**kw):
        report = validate_runs(store.root, jobs=jobs)
        out = QuarantineOutcome(report, dry_run=dry_run)
        for res in report.runs:
            if not res.has_errors:
                continue
            codes = sorted({f.code for f in res.findings if f.severity == Severity.ERROR})
            src = store.root / res.folder
            if res.live or _still_live(src):
                out.skipped.append({"run_id": res.folder, "reason": "live run (fresh "
                                    "heartbeat): never quarantined", "codes": codes})
                continue
            if os.path.lexists(store.quarantine_dir / res.folder):
                out.skipped.append({"run_id": res.folder, "reason": "a quarantined run with "
                                    "this folder name already exists", "codes": codes})
                continue
            move = Move(res.folder, res.folder, f"{layout.QUARANTINE_DIR}/{res.folder}", codes)
            if dry_run:
                out.moved.append(move)
                continue
            now = time.time()

            def intent(move: Move = move) -> None:
                store.audit_append("quarantine-move", {"intent": move.to_dict()})

            try:
                store.quarantine_move(res.folder, _record(res, now), before_move=intent)
            except FileExistsError as e:
                out.skipped.append({"run_id": res.folder, "reason": str(e), "codes": codes})
                continue
            except RustorchToolsError as e:
                if isinstance(e, audit.AuditChainError):
                    raise
                out.skipped.append({"run_id": res.folder, "reason": str(e), "codes": codes})
                continue
            except OSError as e:
                if not os.path.lexists(store.quarantine_dir / res.folder):
                    raise
                move.record_error = f"QUARANTINE.json not written: {e}"  # validate: RT601
            out.moved.append(move)
        if not dry_run:
            store.audit_append("quarantine", {
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
    """Move `.quarantine/<run_id>` back to RUNS_DIR if it validates without errors (the move
    is audited before it happens)."""
    store = RunStore(runs_dir)
    layout.validate_run_id(run_id)
    store.reserved(layout.AUDIT_DIR, create=False)
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    with store.tree_lock(**kw):
        src = store.reserved(layout.QUARANTINE_DIR, create=False) / run_id
        dst = store.root / run_id
        if src.is_symlink() or not src.is_dir():
            raise ReleaseError(f"{run_id!r} is not in {store.quarantine_dir}")
        if os.path.lexists(dst):
            raise ReleaseError(f"{dst} already exists; rename one of the two runs first")
        res = validate_one(store.root, src, in_quarantine=True)
        errors = [f for f in res.findings if f.severity == Severity.ERROR]
        if errors:
            out = ReleaseOutcome(run_id, False, res, "the run still has errors")
        else:
            store.release_move(run_id, before_move=lambda: store.audit_append(
                "release-move", {"intent": {"run_id": run_id, "from":
                                            f"{layout.QUARANTINE_DIR}/{run_id}", "to": run_id}}))
            try:
                store.run(run_id).append_event("released", {"by": "rustorch-tools release"})
            except (RustorchToolsError, OSError):
                pass  # the audit entry below is the authoritative record
            out = ReleaseOutcome(run_id, True, check_run(dst, run_id))
        store.audit_append("release", out.to_dict())
    return out
