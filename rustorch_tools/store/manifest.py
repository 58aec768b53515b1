"""manifest.json: SHA-256 of every file under checkpoints/ and artifacts/.

The `checkpoints/latest` pointer is not listed: it is rewritten on every checkpoint and only
names a file that is listed (checkpoint loading verifies that file's digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CorruptRunError, InvalidNameError, SchemaValidationError
from . import atomic, layout, schema
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
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return empty_manifest()
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
) -> dict[str, Any]:
    """Record `relpath` (relative to the run dir) with its digest and size; returns the entry.

    Pass `sha256` when the writer already computed it from the bytes it wrote.
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
