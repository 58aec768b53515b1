"""`validate --incremental` and the passes of `watch`: re-check only the runs that changed.

A run's fingerprint is the SHA-256 over (relative path, size, mtime_ns, inode, mode) of
everything in its folder, its checkpoints/ and its artifacts/ (to ARTIFACT_DEPTH levels): any
write, append, rename, added or removed file changes it. The cache
`RUNS_DIR/.index/validate-cache.json` keeps, per run folder, the fingerprint and the run's own
findings; a pass re-checks the runs whose fingerprint differs, the new ones and the live ones
(their staleness depends on the clock), reuses the rest, and then runs the whole-tree checks
(duplicate ids, lineage) over all of them as a full `validate` does. The cache is plain JSON
(never pickle: RUNS_DIR may be hostile); an unreadable or foreign cache means a full pass.

Each pass appends one line to `RUNS_DIR/.audit/validation-history.jsonl`:
`{"time", "mode", "checked", "reused", "removed", "summary", "errors": {folder: [codes]},
"new_errors": [folders]}` (the dashboard draws findings over time from it).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import layout
from ..store.atomic import append_line, temp_path_for
from ..store.runstore import RunStore
from .findings import CODES, Finding, Severity
from .run_check import RunResult
from .validate import (
    ValidationReport,
    _top_level,
    _tree_checks,
    check_runs,
    list_quarantine,
)

CACHE_NAME = "validate-cache.json"
HISTORY_NAME = "validation-history.jsonl"
CACHE_FORMAT = "rustorch-validate-cache"
CACHE_VERSION = 1
ARTIFACT_DEPTH = 4
_FIELDS = ("folder", "rel", "run_id", "status", "live", "schema_from", "parent", "torn",
           "torn_lines", "temps", "untracked", "rotated", "manifest_missing", "summary_stale",
           "stale")
_TRACKED = frozenset((layout.CHECKPOINTS, layout.ARTIFACTS))


def _walk(path: str, rel: str, depth: int, out: list[str]) -> None:
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError as exc:
        out.append(f"{rel}\0error {exc.errno}")
        return
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            out.append(f"{rel}/{e.name}\0gone")
            continue
        out.append(f"{rel}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_mode}")
        if depth > 0 and stat.S_ISDIR(st.st_mode) and (rel or e.name in _TRACKED):
            _walk(e.path, f"{rel}/{e.name}", depth - 1, out)


def fingerprint(run_dir: str | os.PathLike[str]) -> str:
    out: list[str] = []
    _walk(os.fspath(run_dir), "", ARTIFACT_DEPTH, out)
    out.sort()
    return hashlib.sha256("\n".join(out).encode("utf-8", "surrogateescape")).hexdigest()


# Cache form of a RunResult: [run_id, status, parent, {other fields that differ from the
# defaults, "findings": [[code, message, run_id, file, line], ...]}] (compact: 10k runs).
_DEFAULTS = {k: getattr(RunResult("", ""), k) for k in _FIELDS}


def _result_to_json(r: RunResult) -> list[Any]:
    rest = {k: getattr(r, k) for k in _FIELDS[7:] if getattr(r, k) != _DEFAULTS[k]}
    if r.live:
        rest["live"] = True
    if r.schema_from is not None:
        rest["schema_from"] = r.schema_from
    if r.findings:
        rest["findings"] = [[f.code, f.message, f.run_id, f.file, f.line] for f in r.findings]
    return [r.run_id, r.status, r.parent, rest]


def _result_from_json(folder: str, doc: list[Any]) -> RunResult:
    run_id, status, parent, rest = doc
    findings = [Finding(*f) for f in rest.pop("findings", ())]
    for f in findings:
        if f.code not in CODES:
            raise ValueError(f"unknown code {f.code!r}")
    r = RunResult(folder, folder, run_id, status, parent=parent, **rest)
    r.findings = findings
    return r


def cache_path(runs_dir: Path) -> Path:
    return RunStore(runs_dir).index_path / CACHE_NAME


def load_cache(runs_dir: Path) -> dict[str, Any]:
    """{"runs": {folder: {"fp", "result"}}, "errors": [folders]}; empty when unusable."""
    path = cache_path(runs_dir)
    empty: dict[str, Any] = {"runs": {}, "errors": []}
    if path.is_symlink() or not path.is_file():
        return empty
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != CACHE_FORMAT or doc.get("version") != CACHE_VERSION:
            return empty
        runs = {k: {"fp": str(fp), "result": _result_from_json(k, res)}
                for k, (fp, res) in doc["runs"].items()}
        return {"runs": runs, "errors": [str(e) for e in doc.get("errors", [])]}
    except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
        return empty  # a damaged cache costs one full pass, never a wrong verdict


def save_cache(runs_dir: Path, runs: dict[str, tuple[str, RunResult]], errors: list[str]) -> None:
    doc = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "errors": errors,
           "runs": {k: [fp, _result_to_json(r)] for k, (fp, r) in runs.items()}}
    idx = RunStore(runs_dir).reserved(layout.INDEX_DIR)
    _replace_unsynced(idx / CACHE_NAME, json.dumps(doc, separators=(",", ":")).encode())


def _replace_unsynced(path: Path, data: bytes) -> None:
    """Temp file + rename, without fsync: the cache is disposable (a cache lost or emptied
    by a power cut costs one full pass), and an fsync per pass would dominate its time on a
    busy disk."""
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


@dataclass
class PassOutcome:
    report: ValidationReport
    checked: list[str] = field(default_factory=list)
    reused: int = 0
    removed: list[str] = field(default_factory=list)
    new_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "reused": self.reused, "removed": self.removed,
                "new_errors": self.new_errors, "seconds": round(self.seconds, 4)}


def _copy(r: RunResult) -> RunResult:
    """A shallow copy with its own findings list (the tree checks append to it)."""
    c = object.__new__(RunResult)
    c.__dict__.update(r.__dict__)
    c.findings = list(r.findings)
    return c


def validate_incremental(runs_dir: Path, jobs: int | None = None, now: float | None = None,
                         mode: str = "incremental", history: bool = True) -> PassOutcome:
    """One incremental pass; updates the cache and (with `history`) appends to the history."""
    t0 = time.perf_counter()
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise NotADirectoryError(f"{runs_dir} is not a directory")
    now = time.time() if now is None else now
    jobs = jobs or os.cpu_count() or 1
    cache = load_cache(runs_dir)
    report = ValidationReport(str(runs_dir), now)
    folders, report.findings = _top_level(runs_dir)
    report.quarantine, qfindings = list_quarantine(runs_dir)
    report.findings.extend(qfindings)
    fps = {f: fingerprint(os.path.join(runs_dir, f)) for f in folders}
    todo, own = [], {}
    for f in folders:
        hit = cache["runs"].get(f)
        if hit is not None and hit["fp"] == fps[f] and not hit["result"].live:
            own[f] = hit["result"]
        else:
            todo.append(f)
    for r in check_runs(runs_dir, todo, now, jobs):
        if not r.vanished:
            own[r.folder] = r
    # The report's results get copies: the tree checks below add findings to them, the
    # cache keeps each run's own findings.
    report.runs = [_copy(own[f]) for f in folders if f in own]
    _tree_checks(report.runs, {q.folder for q in report.quarantine})
    errors = sorted(r.folder for r in report.runs if r.has_errors)
    out = PassOutcome(report, checked=sorted(todo), reused=len(folders) - len(todo),
                      removed=sorted(set(cache["runs"]) - set(folders)),
                      new_errors=sorted(set(errors) - set(cache["errors"])))
    if out.checked or out.removed or errors != cache["errors"]:
        save_cache(runs_dir, {f: (fps[f], own[f]) for f in own}, errors)
    out.seconds = time.perf_counter() - t0
    if history:
        append_history(runs_dir, out, mode, now)
    return out


def append_history(runs_dir: Path, out: PassOutcome, mode: str, now: float) -> None:
    codes = {r.folder: sorted({f.code for f in r.findings if f.severity == Severity.ERROR})
             for r in out.report.runs if r.has_errors}
    line = {"time": now, "mode": mode, "checked": len(out.checked), "reused": out.reused,
            "removed": len(out.removed), "summary": out.report.summary(),
            "errors": codes, "new_errors": out.new_errors,
            "tree_findings": [f.code for f in out.report.findings]}
    adir = RunStore(runs_dir).reserved(layout.AUDIT_DIR)
    append_line(adir / HISTORY_NAME, json.dumps(line, sort_keys=True,
                                                separators=(",", ":")).encode() + b"\n")


def read_history(runs_dir: Path, limit: int = 100_000) -> list[dict[str, Any]]:
    """The history lines (bad lines skipped), oldest first, at most the last `limit`."""
    path = RunStore(runs_dir).audit_dir / HISTORY_NAME
    if path.is_symlink() or not path.is_file():
        return []
    out = []
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("time"), int | float):
                out.append(doc)
    return out[-limit:]
