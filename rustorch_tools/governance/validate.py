"""Validation of a whole RUNS_DIR: every run (in a process pool), then the checks that need
all runs at once (duplicate ids, lineage), the top-level entries and the quarantine area."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..store import layout
from ..store.locks import LOCKS_DIR
from ..store.runstore import QUARANTINE_FILE, RunStore
from ..workers import bounded_jobs, worker_pool
from .findings import Finding, Severity, count_by_severity
from .run_check import RunResult, check_run

_RESERVED = {layout.QUARANTINE_DIR, layout.AUDIT_DIR, layout.INDEX_DIR, layout.PIPELINES_DIR,
             LOCKS_DIR}
_POOL_MIN_RUNS = 16  # below this a pool costs more than it saves


@dataclass
class QuarantineEntry:
    folder: str
    run_id: str | None
    quarantined_at: float | None
    codes: list[str]
    record_ok: bool

    def to_dict(self) -> dict:
        return {"folder": self.folder, "run_id": self.run_id,
                "quarantined_at": self.quarantined_at, "codes": self.codes,
                "record_ok": self.record_ok}


@dataclass
class ValidationReport:
    runs_dir: str
    checked_at: float
    runs: list[RunResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # not tied to one run folder
    quarantine: list[QuarantineEntry] = field(default_factory=list)

    def all_findings(self) -> Iterator[Finding]:
        yield from self.findings
        for r in self.runs:
            yield from r.findings

    def counts(self) -> dict[str, int]:
        return count_by_severity(list(self.all_findings()))

    def exit_code(self, strict: bool = False) -> int:
        floor = Severity.WARNING if strict else Severity.ERROR
        return int(any(f.severity >= floor for f in self.all_findings()))

    def summary(self) -> dict:
        c = self.counts()
        return {"runs": len(self.runs),
                "runs_with_errors": sum(r.has_errors for r in self.runs),
                "runs_live": sum(r.live for r in self.runs),
                "runs_migrated": sum(r.schema_from is not None for r in self.runs),
                "quarantined": len(self.quarantine),
                "errors": c["error"], "warnings": c["warning"], "infos": c["info"]}


def _top_level(runs_dir: Path) -> tuple[list[str], list[Finding]]:
    """Run folders to check, and findings about everything else at the top of RUNS_DIR."""
    folders, findings = [], []
    for e in sorted(os.scandir(runs_dir), key=lambda e: e.name):
        if e.is_symlink():
            findings.append(Finding("RT506", "symbolic link at the top of RUNS_DIR (not "
                                             "followed)", None, e.name))
        elif e.name in _RESERVED:
            if not e.is_dir(follow_symlinks=False):
                findings.append(Finding("RT505", "reserved name is not a folder", None, e.name))
        elif e.name.startswith("."):
            if not layout.is_temp_name(e.name):
                findings.append(Finding("RT505", "unknown dot entry", None, e.name))
        elif e.is_dir(follow_symlinks=False):
            folders.append(e.name)
        else:
            findings.append(Finding("RT505", "file at the top of RUNS_DIR", None, e.name))
    return folders, findings


def read_quarantine_record(folder: Path) -> dict | None:
    """QUARANTINE.json of a quarantined run, None if absent or unreadable."""
    return RunStore(folder.parent.parent).read_quarantine_record(folder)


def list_quarantine(runs_dir: Path) -> tuple[list[QuarantineEntry], list[Finding]]:
    qdir = RunStore(runs_dir).quarantine_dir
    entries, findings = [], []
    if not qdir.is_dir() or qdir.is_symlink():
        return entries, findings
    for e in sorted(os.scandir(qdir), key=lambda e: e.name):
        if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
            continue
        rec = read_quarantine_record(Path(e.path))
        if rec is None:
            findings.append(Finding("RT601", "QUARANTINE.json missing or unreadable", e.name,
                                    f"{layout.QUARANTINE_DIR}/{e.name}/{QUARANTINE_FILE}"))
        codes = sorted({f.get("code") for f in (rec or {}).get("findings", [])
                        if isinstance(f, dict) and isinstance(f.get("code"), str)})
        at = (rec or {}).get("quarantined_at")
        entries.append(QuarantineEntry(e.name, (rec or {}).get("run_id", e.name),
                                       at if isinstance(at, int | float) else None, codes,
                                       rec is not None))
    return entries, findings


def _check_one(args: tuple[str, str, float]) -> RunResult:
    path, rel, now = args
    return check_run(Path(path), rel, now)


def _progress(total: int) -> Callable[[Iterable[RunResult]], Iterable[RunResult]]:
    if not sys.stderr.isatty():
        return lambda it: it
    from tqdm import tqdm

    return lambda it: tqdm(it, total=total, unit="run", file=sys.stderr, leave=False)


def check_runs(runs_dir: Path, folders: list[str], now: float, jobs: int) -> list[RunResult]:
    tasks = [(str(runs_dir / f), f, now) for f in folders]
    wrap = _progress(len(tasks))
    if jobs <= 1 or len(tasks) < _POOL_MIN_RUNS:
        return list(wrap(map(_check_one, tasks)))
    chunk = max(1, min(64, len(tasks) // (jobs * 8)))
    with worker_pool(jobs) as pool:
        return list(wrap(pool.map(_check_one, tasks, chunksize=chunk)))


def _tree_checks(results: list[RunResult], quarantined: set[str]) -> None:
    """Duplicate run ids and lineage; findings go to the runs they concern."""
    by_id: dict[str, list[RunResult]] = {}
    for r in results:
        by_id.setdefault(r.run_id or r.folder, []).append(r)
    for run_id, group in by_id.items():
        if len(group) > 1:
            names = ", ".join(g.folder for g in group)
            for r in group:
                r.findings.append(Finding("RT503", f"run id {run_id!r} is claimed by folders "
                                                   f"{names}", r.folder, r.rel))
        if run_id in quarantined:
            for r in group:
                r.findings.append(Finding("RT503", f"run id {run_id!r} is also in quarantine",
                                          r.folder, r.rel))
    folder_of = {r.folder: r for r in results}
    for r in results:
        if r.parent is None:
            continue
        if r.parent in folder_of:
            continue
        if r.parent in quarantined:
            r.findings.append(Finding("RT507", f"parent {r.parent!r} is quarantined", r.folder,
                                      f"{r.rel}/{layout.RUN_JSON}"))
        else:
            r.findings.append(Finding("RT501", f"parent {r.parent!r} does not exist",
                                      r.folder, f"{r.rel}/{layout.RUN_JSON}"))
    # Cycles: walk parent pointers; a walk that meets itself marks the cycle's members.
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = done
    for start in folder_of:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in folder_of and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = folder_of[node].parent
        if node is not None and state.get(node) == 1:
            cycle = path[path.index(node):]
            for member in cycle:
                m = folder_of[member]
                m.findings.append(Finding("RT502", "lineage cycle: " + " -> ".join(
                    [*cycle, cycle[0]]), m.folder, f"{m.rel}/{layout.RUN_JSON}"))
        for p in path:
            state[p] = 2


def validate_runs(runs_dir: Path, jobs: int | None = None,
                  now: float | None = None) -> ValidationReport:
    """Validate every run under `runs_dir`. Raises OSError if RUNS_DIR cannot be listed."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise NotADirectoryError(f"{runs_dir} is not a directory")
    now = time.time() if now is None else now
    jobs = bounded_jobs(jobs)
    report = ValidationReport(str(runs_dir), now)
    folders, report.findings = _top_level(runs_dir)
    report.quarantine, qfindings = list_quarantine(runs_dir)
    report.findings.extend(qfindings)
    # A run moved by a concurrent quarantine/release is checked where it lands next time.
    report.runs = [r for r in check_runs(runs_dir, folders, now, jobs) if not r.vanished]
    _tree_checks(report.runs, {q.folder for q in report.quarantine})
    return report


def validate_one(runs_dir: Path, folder: Path, now: float | None = None,
                 in_quarantine: bool = False) -> RunResult:
    """One run with the tree checks against the runs in `runs_dir` (used by `release`)."""
    now = time.time() if now is None else now
    res = check_run(folder, folder.name, now, in_quarantine=in_quarantine)
    others = [RunResult(folder=f, rel=f) for f in _top_level(runs_dir)[0] if f != folder.name]
    for o in others:
        o.run_id = o.folder
    quarantined = {q.folder for q in list_quarantine(runs_dir)[0]} - {folder.name}
    _tree_checks([res, *others], quarantined)
    return res
