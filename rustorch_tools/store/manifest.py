"""manifest.json: SHA-256 of every file under checkpoints/ and artifacts/.

The `checkpoints/latest` pointer is not listed: it is rewritten on every checkpoint and only
names a file that is listed (checkpoint loading verifies that file's digest).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CorruptRunError, InvalidNameError, SchemaValidationError
from . import atomic, fastjson, layout, schema
from .jsonl import open_regular
from .runs import run_lock

PathLike = str | os.PathLike[str]
TRACKED_DIRS = (layout.CHECKPOINTS, layout.ARTIFACTS)
_CHUNK = 1 << 20


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_relpath(relpath: str) -> str:
    """A manifest key: `checkpoints/…` or `artifacts/…`, `/`-separated, no `.`/`..` parts."""
    parts = PurePosixPath(relpath).parts
    if (
        len(parts) < 2
        or parts[0] not in TRACKED_DIRS
        or "\\" in relpath
        or any(p in (".", "..") for p in relpath.split("/"))
        or relpath.startswith("/")
    ):
        raise InvalidNameError(
            f"manifest path {relpath!r} must be checkpoints/<file> or artifacts/<file>, "
            "'/'-separated, without '.' or '..'"
        )
    return relpath


def empty_manifest() -> dict[str, Any]:
    return {"schema_version": schema.SCHEMA_VERSION, "files": {}}


def read_manifest(run_dir: PathLike) -> dict[str, Any]:
    """manifest.json as a dict (an empty manifest when the file does not exist)."""
    path = Path(run_dir) / layout.MANIFEST
    try:
        with open_regular(path) as fh:  # a link or a FIFO is refused, never followed
            doc = fastjson.loads(fh.read())
    except FileNotFoundError:
        return empty_manifest()
    except (UnicodeDecodeError, ValueError) as exc:  # NaN, deep nesting, overflow included
        raise CorruptRunError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise CorruptRunError(f"{path}: a JSON {type(doc).__name__}, not an object")
    schema.document_version(doc, str(path))
    return doc


def write_manifest(run_dir: PathLike, doc: dict[str, Any]) -> None:
    """Validate and atomically replace manifest.json (caller holds the run lock)."""
    errors = schema.validate_document("manifest", doc)
    if errors:
        raise SchemaValidationError("manifest", errors)
    atomic.atomic_write_json(Path(run_dir) / layout.MANIFEST, doc)


def add_file(
    run_dir: PathLike,
    relpath: str,
    sha256: str | None = None,
    verified: bool = True,
    blake3: str | None = None,
) -> dict[str, Any]:
    """Record `relpath` (relative to the run dir) with its digest and size; returns the entry.

    Pass `sha256` when the writer already computed it from the bytes it wrote; `blake3`
    (checkpoints, format 2) is recorded beside it when given: what loading verifies.
    """
    check_relpath(relpath)
    path = Path(run_dir) / relpath
    size = path.stat().st_size
    entry = {
        "sha256": sha256 or sha256_file(path),
        "size": size,
        "added_at": time.time(),
        "verified": verified,
    }
    if blake3 is not None:
        entry["blake3"] = blake3
    with run_lock(run_dir):
        doc = read_manifest(run_dir)
        doc["files"][relpath] = entry
        write_manifest(run_dir, doc)
    return entry


def remove_files(run_dir: PathLike, relpaths: list[str]) -> None:
    """Forget `relpaths` (e.g. checkpoints rotated away); unknown paths are ignored."""
    with run_lock(run_dir):
        doc = read_manifest(run_dir)
        for relpath in relpaths:
            doc["files"].pop(relpath, None)
        write_manifest(run_dir, doc)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One finding of `verify`.

    kind: `missing` (listed, file absent), `modified` (digest or size differs), `untracked`
    (file present, not listed), `temp` (leftover temp file of an interrupted atomic write).
    """

    relpath: str
    kind: str
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        if self.kind == "modified":
            return f"{self.relpath}: modified (manifest sha256 {self.expected}, file {self.actual})"
        return f"{self.relpath}: {self.kind}"


def tracked_files(run_dir: PathLike) -> list[str]:
    """Relative paths of the files under checkpoints/ and artifacts/ (sorted)."""
    run_dir = Path(run_dir)
    out = []
    for top in TRACKED_DIRS:
        base = run_dir / top
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                rel = Path(dirpath, name).relative_to(run_dir).as_posix()
                out.append(rel)
    return sorted(out)


def verify(run_dir: PathLike) -> list[Mismatch]:
    """Compare manifest.json with the files on disk; empty when everything matches."""
    doc = read_manifest(run_dir)
    listed: dict[str, Any] = doc.get("files", {})
    present = set(tracked_files(run_dir))
    pointer = f"{layout.CHECKPOINTS}/{layout.LATEST}"
    found: list[Mismatch] = []
    for relpath in sorted(listed):
        entry = listed[relpath]
        path = Path(run_dir) / relpath
        if relpath not in present:
            found.append(Mismatch(relpath, "missing", entry.get("sha256")))
            continue
        actual = sha256_file(path)
        if actual != entry.get("sha256") or path.stat().st_size != entry.get("size"):
            found.append(Mismatch(relpath, "modified", entry.get("sha256"), actual))
    for relpath in sorted(present - set(listed)):
        if relpath == pointer:
            continue
        kind = "temp" if layout.is_temp_name(PurePosixPath(relpath).name) else "untracked"
        found.append(Mismatch(relpath, kind))
    return found


LOG_FILES = (layout.METRICS, layout.EVENTS)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """What a JSONL file held when its run ended: the first `bytes` bytes, `rows` lines."""

    rows: int
    bytes: int
    sha256: str


def measure_log(path: PathLike, limit: int | None = None) -> LogRecord | None:
    """Row count, length and SHA-256 of the first `limit` bytes of `path` (all of it when
    None); None when the file does not exist. Links and special files are refused."""
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        return None
    digest = hashlib.sha256()
    rows = size = 0
    with fh:
        while limit is None or size < limit:
            want = _CHUNK if limit is None else min(_CHUNK, limit - size)
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            rows += chunk.count(b"\n")
            size += len(chunk)
    return LogRecord(rows, size, digest.hexdigest())


def record_logs(run_dir: PathLike) -> dict[str, Any]:
    """Record metrics.jsonl and events.jsonl as they are now in manifest.json `logs` (under
    the run lock): what validation later holds the files to. Returns the records."""
    run_dir = Path(run_dir)
    now = time.time()
    with run_lock(run_dir):
        logs = {}
        for name in LOG_FILES:
            try:
                rec = measure_log(run_dir / name)
            except OSError:
                continue  # a link or special file: validation reports it, nothing to vouch for
            logs[name] = {"rows": 0, "bytes": 0, "sha256": hashlib.sha256().hexdigest(),
                          "recorded_at": now} if rec is None else {
                "rows": rec.rows, "bytes": rec.bytes, "sha256": rec.sha256, "recorded_at": now}
        doc = read_manifest(run_dir)
        doc["logs"] = logs
        write_manifest(run_dir, doc)
    return logs


def verify_logs(run_dir: PathLike, doc: dict[str, Any],
                intact: Collection[str] = ()) -> list[tuple[str, str, str]]:
    """(file, kind, message) for each recorded JSONL file that lost or changed data: kind
    `lost` (missing, or shorter than recorded) or `modified` (recorded prefix differs).
    `intact`: files whose recorded prefix the caller already hashed and found unchanged."""
    out = []
    for name, rec in sorted((doc.get("logs") or {}).items()):
        if name in intact:
            continue
        path = Path(run_dir) / name
        try:
            now = measure_log(path, rec["bytes"])
        except OSError as exc:
            out.append((name, "lost", f"cannot be read ({exc.strerror or exc})"))
            continue
        if now is None:
            if rec["bytes"]:
                out.append((name, "lost", f"deleted; held {rec['rows']} rows ({rec['bytes']} "
                                          "bytes) when the run ended"))
            continue
        if now.bytes < rec["bytes"]:
            out.append((name, "lost", f"{now.bytes} bytes ({now.rows} rows), but held "
                                      f"{rec['bytes']} bytes ({rec['rows']} rows) when the run "
                                      "ended"))
        elif now.sha256 != rec["sha256"]:
            out.append((name, "modified", f"its first {rec['bytes']} bytes differ from what the "
                                          "run held when it ended"))
    return out
