"""Validation of one run folder: run.json, JSONL files, manifest digests, status, files.

Read-only. Symbolic links are reported and never followed, special files are never opened
(a FIFO would block), and every failure becomes a `Finding`, never an exception, so that one
broken run cannot stop a sweep over thousands.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptRunError, RunNotFoundError, UnsupportedSchemaVersion
from ..store import layout, manifest, runs, schema
from ..store.compiled_schema import manifest_ok, run_doc_ok
from ..store.jsonl import nonfinite_text
from ..store.repair import ORPHAN_SUFFIX  # bytes set aside by `repair`: `<name>.<time>.orphan`
from ..store.runstore import QUARANTINE_FILE
from .findings import Finding, Severity, worst
from .jsonl_check import JsonlStats, check_jsonl

_KNOWN_FILES = {layout.RUN_JSON, layout.METRICS, layout.EVENTS, layout.MANIFEST, layout.LOCK}
_KNOWN_DIRS = {layout.CHECKPOINTS, layout.ARTIFACTS}
_MAX_SCHEMA_MESSAGES = 10
_ROW_KEYS = ("step", "time", "rank")


@dataclass
class RunResult:
    """What validation learned about one run; picklable (crosses the process pool)."""

    folder: str  # folder name
    rel: str  # path relative to RUNS_DIR
    run_id: str | None = None  # as declared in run.json
    status: str | None = None  # effective status (stale running -> crashed)
    live: bool = False
    schema_from: int | None = None  # version migrated from in memory, None if current
    parent: str | None = None
    findings: list[Finding] = field(default_factory=list)
    torn: dict[str, int] = field(default_factory=dict)  # JSONL file -> offset of its torn tail
    torn_lines: dict[str, list[int]] = field(default_factory=dict)  # JSONL file -> torn lines
    temps: list[str] = field(default_factory=list)  # leftover temp files (run-relative)
    untracked: list[str] = field(default_factory=list)  # tracked-dir files not in the manifest
    rotated: list[str] = field(default_factory=list)  # absent checkpoints older than a present one
    manifest_missing: bool = False
    summary_stale: bool = False
    data_lost: bool = False  # RT210/RT211/RT212: no repair may rewrite the evidence
    stale: bool = False
    vanished: bool = False  # moved away (quarantine, release) while it was being checked

    @property
    def worst(self) -> Severity | None:
        return worst(self.findings)

    @property
    def has_errors(self) -> bool:
        return self.worst == Severity.ERROR

    def to_dict(self) -> dict:
        return {"folder": self.folder, "path": self.rel, "run_id": self.run_id,
                "status": self.status, "live": self.live,
                "migrated_from": self.schema_from, "parent": self.parent,
                "findings": [f.to_dict() for f in self.findings]}


def _kind(e: os.DirEntry) -> str:
    """From the directory entry's type (no stat call unless the filesystem does not say)."""
    if e.is_symlink():
        return "link"
    if e.is_dir(follow_symlinks=False):
        return "dir"
    if e.is_file(follow_symlinks=False):
        return "file"
    return "special"


class _RunChecker:
    def __init__(self, run_dir: Path, rel: str, now: float, in_quarantine: bool) -> None:
        self.dir, self.rel, self.now = run_dir, rel, now
        self.in_quarantine = in_quarantine
        self.res = RunResult(folder=run_dir.name, rel=rel)
        self.id_for_findings = run_dir.name

    def add(self, code: str, message: str, file: str | None = None,
            line: int | None = None) -> None:
        path = f"{self.rel}/{file}" if file else self.rel
        self.res.findings.append(Finding(code, message, self.id_for_findings, path, line))

    # ----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        if not layout.RUN_ID_RE.fullmatch(self.dir.name):
            self.add("RT107", f"folder name {self.dir.name!r} is not a valid run id")
        try:
            with os.scandir(self.dir) as it:
                entries = {e.name: _kind(e) for e in it}
        except FileNotFoundError:
            self.res.vanished = True
            return self.res
        except OSError as e:
            self.add("RT901", f"cannot list the run folder: {e.strerror or e}")
            return self.res
        doc = self._check_run_json(entries.get(layout.RUN_JSON))
        self._check_status(doc)  # before the rest: liveness decides what in-flight data means
        self._check_entries(entries)
        self._read_manifest(entries.get(layout.MANIFEST))
        stats = {}
        for name, kind in ((layout.METRICS, "metrics"), (layout.EVENTS, "events")):
            stats[kind] = self._check_jsonl(name, kind, entries.get(name))
        self._check_manifest(entries)
        if doc is not None:
            self._check_summary(doc, stats.get("metrics"))
        if self.res.findings and not os.path.lexists(self.dir):
            self.res.vanished = True  # its findings describe a half-seen folder: drop them
        return self.res

    def _check_entries(self, entries: dict[str, str]) -> None:
        for name in (layout.RUN_JSON, layout.METRICS, layout.EVENTS, layout.MANIFEST):
            if entries.get(name) == "file":
                try:
                    links = os.lstat(self.dir / name).st_nlink
                except OSError:
                    continue
                if links > 1:  # a write to it would change a file outside the run too
                    self.add("RT506", f"file has {links - 1} other hard link(s) (never written)",
                             name)
        for name, kind in sorted(entries.items()):
            if kind == "link":
                self.add("RT506", "symbolic link (not followed)", name)
            elif kind == "special":
                self.add("RT901", "not a regular file or folder (never opened)", name)
            elif name in _KNOWN_FILES:
                if kind != "file":
                    self.add("RT901", f"{name} should be a file, found a folder", name)
            elif name in _KNOWN_DIRS:
                if kind != "dir":
                    self.add("RT504", f"{name} should be a folder, found a file", name)
            elif name.endswith(ORPHAN_SUFFIX) and kind == "file":
                continue  # torn bytes kept by repair
            elif name == QUARANTINE_FILE and self.in_quarantine:
                continue
            elif layout.is_temp_name(name) and kind == "file":
                if not self._maybe_live():
                    self.res.temps.append(name)
                    self.add("RT504", "leftover temp file of an interrupted write", name)
            else:
                self.add("RT504", f"unknown {'folder' if kind == 'dir' else 'file'}", name)

    def _maybe_live(self) -> bool:
        return self.res.live

    def _check_run_json(self, kind: str | None) -> dict | None:
        if kind is None:
            self.add("RT101", "run.json is missing", layout.RUN_JSON)
            return None
        if kind != "file":
            return None  # reported by _check_entries
        try:
            raw = runs.read_run_raw(self.dir)
        except (CorruptRunError, RecursionError) as e:
            self.add("RT102", str(e).replace(str(self.dir) + "/", "")[:300], layout.RUN_JSON)
            return None
        except (RunNotFoundError, OSError) as e:
            self.add("RT901", f"cannot read run.json: {e}", layout.RUN_JSON)
            return None
        try:
            doc, version = schema.migrate_run(raw)
        except UnsupportedSchemaVersion as e:
            self.add("RT105", str(e), layout.RUN_JSON)
            return None
        except (TypeError, ValueError, AttributeError) as e:  # legacy doc of the wrong shape
            self.add("RT103", f"legacy run.json cannot be migrated: {e}", layout.RUN_JSON)
            return None
        if version is not None:
            self.res.schema_from = version
            self.add("RT104", f"schema_version {version} migrated in memory to "
                              f"{schema.SCHEMA_VERSION}", layout.RUN_JSON)
        errors = [] if run_doc_ok(doc) else schema.validate_document("run", doc)
        for msg in errors[:_MAX_SCHEMA_MESSAGES]:
            self.add("RT103", msg[:300], layout.RUN_JSON)
        if len(errors) > _MAX_SCHEMA_MESSAGES:
            self.add("RT103", f"{len(errors) - _MAX_SCHEMA_MESSAGES} more schema errors",
                     layout.RUN_JSON)
        run_id = doc.get("run_id")
        if isinstance(run_id, str):
            self.res.run_id = run_id
            if run_id != self.dir.name:
                self.add("RT106", f"run.json says run_id {run_id!r}, folder is "
                                  f"{self.dir.name!r}", layout.RUN_JSON)
        parent = doc.get("parent")
        if isinstance(parent, dict) and isinstance(parent.get("run_id"), str):
            self.res.parent = parent["run_id"]
        return doc

    def _check_status(self, doc: dict | None) -> None:
        if doc is None:
            return
        status = doc.get("status")
        self.res.status = status if isinstance(status, str) else None
        if status != "running":
            if status in ("finished", "failed") and doc.get("ended_at") is None:
                self.add("RT402", f"status {status} but ended_at is null", layout.RUN_JSON)
            if status == "failed" and not doc.get("error"):
                self.add("RT403", "status failed but error is null", layout.RUN_JSON)
            return
        try:
            stale = runs.is_stale(doc, self.now)
        except (TypeError, ValueError):  # heartbeat_interval_s of the wrong type
            stale = True
        if stale:
            self.res.stale, self.res.status = True, "crashed"
            beat = doc.get("heartbeat_at")
            age = (f"{self.now - beat:.0f} s ago" if isinstance(beat, int | float)
                   else "never")
            self.add("RT401", f"status running, last heartbeat {age}", layout.RUN_JSON)
        else:
            self.res.live = True

    def _read_manifest(self, kind: str | None) -> None:
        """Read and schema-check manifest.json once (findings come later, in
        _check_manifest): its `logs` records let the JSONL checks hash what they read."""
        self._manifest: dict | None = None
        self._manifest_problems: list[str] = []
        self._intact_logs: set[str] = set()
        if kind != "file":
            return
        try:
            doc = manifest.read_manifest(self.dir)
        except (CorruptRunError, UnsupportedSchemaVersion, RecursionError, OSError) as e:
            self._manifest_problems = [str(e).replace(str(self.dir) + "/", "")]
            return
        errors = [] if manifest_ok(doc) else schema.validate_document("manifest", doc)
        if errors:
            self._manifest_problems = errors
            return
        self._manifest = doc

    def _check_jsonl(self, name: str, kind: str, ftype: str | None) -> JsonlStats | None:
        if ftype is None:
            if kind == "events":
                self.add("RT207", f"{name} is missing", name)
            return None
        if ftype != "file":
            return None
        record = ((self._manifest or {}).get("logs") or {}).get(name)
        try:
            findings, stats = check_jsonl(self.dir / name, kind, self.id_for_findings,
                                          f"{self.rel}/{name}", self.res.live,
                                          digest_limit=None if record is None else record["bytes"])
        except OSError as e:
            self.add("RT901", f"cannot read: {e.strerror or e}", name)
            return None
        if record is not None and stats.prefix_bytes == record["bytes"] \
                and stats.prefix_sha256 == record["sha256"]:
            self._intact_logs.add(name)  # verify_logs need not read it again
        self.res.findings.extend(findings)
        if stats.torn and stats.torn_offset is not None:
            self.res.torn[name] = stats.torn_offset
        if stats.torn_lines:
            self.res.torn_lines[name] = list(stats.torn_lines)
        return stats

    def _tracked(self, entries: dict[str, str]) -> tuple[dict[str, os.DirEntry], bool]:
        """Regular files under checkpoints/ and artifacts/; links and specials reported."""
        files: dict[str, os.DirEntry] = {}
        unsafe = False
        for top in manifest.TRACKED_DIRS:
            if entries.get(top) != "dir":  # absent, or a link/file reported by _check_entries
                continue
            base = self.dir / top
            stack = [base]
            while stack:
                d = stack.pop()
                try:
                    it = list(os.scandir(d))
                except OSError as e:
                    self.add("RT901", f"cannot list: {e.strerror or e}",
                             d.relative_to(self.dir).as_posix())
                    unsafe = True
                    continue
                for e in it:
                    rel = Path(e.path).relative_to(self.dir).as_posix()
                    kind = _kind(e)
                    if kind == "dir":
                        stack.append(Path(e.path))
                    elif kind == "file":
                        files[rel] = e
                    elif kind == "link":
                        self.add("RT506", "symbolic link (not followed)", rel)
                    else:
                        self.add("RT901", "not a regular file (never opened)", rel)
        return files, unsafe

    def _check_manifest(self, entries: dict[str, str]) -> None:
        files, _ = self._tracked(entries)
        pointer = f"{layout.CHECKPOINTS}/{layout.LATEST}"
        kind = entries.get(layout.MANIFEST)
        if kind is None:
            if set(files) - {pointer}:
                self.res.manifest_missing = True
                self.add("RT301", f"{len(files)} files under checkpoints/ or artifacts/ and no "
                                  "manifest.json", layout.MANIFEST)
            return
        if kind != "file":
            return
        doc = self._manifest
        if doc is None:
            for msg in self._manifest_problems[:_MAX_SCHEMA_MESSAGES]:
                self.add("RT302", msg[:300], layout.MANIFEST)
            return
        for name, kind, message in manifest.verify_logs(self.dir, doc, self._intact_logs):
            self.res.data_lost = True
            self.add("RT210" if kind == "lost" else "RT211", message, name)
        listed: dict = doc["files"]
        unverified = 0
        absent = []
        for relpath in sorted(listed):
            entry = listed[relpath]
            if not entry.get("verified", True):
                unverified += 1
            found = files.get(relpath)
            if found is None:
                absent.append(relpath)
                self.add("RT304", "listed in manifest.json, absent", relpath)
                continue
            size = found.stat(follow_symlinks=False).st_size
            if size != entry["size"]:
                self.add("RT303", f"size {size}, manifest says {entry['size']}", relpath)
                continue
            try:
                actual = manifest.sha256_file(self.dir / relpath)
            except OSError as e:
                self.add("RT901", f"cannot read: {e.strerror or e}", relpath)
                continue
            if actual != entry["sha256"]:
                self.add("RT303", f"sha256 {actual[:16]}…, manifest says "
                                  f"{entry['sha256'][:16]}…", relpath)
        for relpath in sorted(set(files) - set(listed) - {pointer}):
            if layout.is_temp_name(relpath.rsplit("/", 1)[-1]):
                if not self.res.live:
                    self.res.temps.append(relpath)
                    self.add("RT504", "leftover temp file of an interrupted write", relpath)
            elif not self.res.live:  # a live writer adds the file, then the manifest entry
                self.res.untracked.append(relpath)
                self.add("RT305", "not listed in manifest.json", relpath)
        self.res.rotated = _rotated(listed, absent, files)
        if unverified:
            self.add("RT306", f"{unverified} entries rebuilt by repair (verified: false)",
                     layout.MANIFEST)

    def _check_summary(self, doc: dict, stats: JsonlStats | None) -> None:
        """The writer keeps `summary = {"metrics": {name: last value}, "step": last step,
        "updated_at"}` current on flush; an ended run must match its metrics file."""
        if self.res.live:
            return
        summary = doc.get("summary")
        if not isinstance(summary, dict):
            return  # schema finding already
        recorded = summary.get("step")
        last = stats.max_step if stats is not None else None
        if isinstance(recorded, int) and not isinstance(recorded, bool) and (
                last is None or recorded > last):
            # The writer only ever records steps it logged: rows were removed since.
            self.res.data_lost = True
            held = "no rows" if last is None else f"rows up to step {last}"
            self.add("RT212", f"summary records step {recorded}, {layout.METRICS} holds {held}",
                     layout.RUN_JSON)
            return
        if stats is None or stats.last_row is None or not stats.last_steps:
            return
        diff = []
        if summary.get("step") != max(stats.last_steps.values()):
            diff.append("step")
        metrics = summary.get("metrics")
        if not isinstance(metrics, dict):
            diff.append("metrics")
            metrics = {}
        single = list(stats.last_steps) == [None]  # ranks merge their own views: names only
        for key, value in summary_metrics(stats.last_row).items():
            if key not in metrics or (single and not _same(metrics[key], value)):
                diff.append(key)
        if diff:
            self.res.summary_stale = True
            self.add("RT404", f"summary differs for {', '.join(map(str, diff[:5]))}",
                     layout.RUN_JSON)


def _rotated(listed: dict, absent: list[str], files: dict) -> list[str]:
    """Absent checkpoints that checkpoint rotation would have removed: each was recorded
    before a checkpoint that is still present (rotation deletes the oldest files first, then
    forgets them in the manifest; a writer killed in between leaves exactly these)."""
    prefix = layout.CHECKPOINTS + "/"
    present = [e.get("added_at") for r, e in listed.items()
               if r.startswith(prefix) and r in files and isinstance(e.get("added_at"), int | float)]
    if not present:
        return []
    newest = max(present)
    return [r for r in absent if r.startswith(prefix) and r.count("/") == 1
            and isinstance(listed[r].get("added_at"), int | float)
            and listed[r]["added_at"] < newest]


def _same(stored: object, value: object) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return stored == nonfinite_text(value)
    return stored == value


def summary_metrics(row: dict) -> dict:
    """The metric values of a row (no step/time/rank, no `_` keys)."""
    return {k: v for k, v in row.items() if not k.startswith("_") and k not in _ROW_KEYS}


def check_run(run_dir: Path, rel: str, now: float | None = None,
              in_quarantine: bool = False) -> RunResult:
    """Validate one run folder; never raises for anything found on disk."""
    return _RunChecker(Path(run_dir), rel, time.time() if now is None else now,
                       in_quarantine).run()
