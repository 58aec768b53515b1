"""On-disk repair primitives for a dead run's files; `rustorch-tools repair` drives and audits them.

Governance decides *what* to repair (rustorch_tools/governance/repair.py, after validation,
under its lock, with digests in the audit log); these functions own *how*, since the store is
the one module that knows the file format. None of them deletes a byte:

- `cut_torn_tail`: the torn last line of a JSONL file moves into an orphan file;
- `cut_torn_lines`: torn lines in the middle of a JSONL file (`jsonl.is_torn_fragment`) move
  into an orphan file;
- `set_aside`: a leftover temp file of an interrupted atomic write is renamed to an orphan;
- `mark_crashed`: the run.json change for a stale `running` run;
- `rebuild_manifest`, `adopt_files`, `forget_files`: manifest.json entries for files whose
  writer died between writing the file and recording it (entries `verified: false`), or
  between removing a rotated checkpoint and forgetting it (the forgotten entries are returned
  for the audit log).

Orphans are `<name>.<unix time>.orphan` in the run folder itself. Callers must make sure the
run's writers are gone (validation's liveness rule): JSONL rewrites happen under the same
flock writers take to append, and `atomic.append_line` re-opens a file replaced meanwhile.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from . import atomic, jsonl, layout, manifest, runs

ORPHAN_SUFFIX = ".orphan"

PathLike = str | os.PathLike[str]


class RepairConflict(RustorchToolsError):
    """The file changed since it was checked; nothing was changed, check again."""


def orphan_path(run_dir: Path, name: str) -> Path:
    """A fresh `<name>.<unix time>.orphan` in `run_dir`."""
    return run_dir / f"{name}.{time.time():.6f}{ORPHAN_SUFFIX}"


def _write_orphan(path: Path, data: bytes) -> dict[str, Any]:
    atomic.atomic_write_bytes(path, data)  # fsynced before the bytes leave their file
    return {"orphan": path.name, "bytes": len(data),
            "orphan_sha256": hashlib.sha256(data).hexdigest()}


def _open_locked(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            # Truncating or rewriting a file with other hard links would change a file
            # outside RUNS_DIR too.
            raise RepairConflict(f"{path.name} is not a plain file with a single link; not "
                                 "repaired (quarantine the run)")
        os.set_blocking(fd, True)
        fcntl.flock(fd, fcntl.LOCK_EX)  # writers append under this same lock
    except BaseException:
        os.close(fd)
        raise
    return fd


def cut_torn_tail(path: PathLike, offset: int) -> dict[str, Any]:
    """Move the bytes after `offset` (the torn last line, no newline) into an orphan file."""
    path = Path(path)
    fd = _open_locked(path)
    try:
        size = os.fstat(fd).st_size
        tail = os.pread(fd, size - offset, offset) if size > offset else b""
        if not tail or b"\n" in tail or (offset and os.pread(fd, 1, offset - 1) != b"\n"):
            raise RepairConflict(f"{path.name} changed since validation; run repair again")
        done = _write_orphan(orphan_path(path.parent, path.name), tail)
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return done


def cut_torn_lines(path: PathLike, linenos: list[int]) -> dict[str, Any]:
    """Move the torn lines `linenos` (1-based, complete with their newline) into an orphan file.

    Every listed line must still be a torn fragment (`jsonl.is_torn_fragment`), else nothing
    changes (RepairConflict). The file is rewritten atomically with the other lines, in order,
    byte for byte; the orphan holds the cut lines in order, newlines included.
    """
    path = Path(path)
    wanted = set(linenos)
    fd = _open_locked(path)
    try:
        with os.fdopen(os.dup(fd), "rb") as fh:
            lines = split_lines(fh.read())
        cut, kept = [], []
        for n, line in enumerate(lines, start=1):
            if n in wanted:
                if not line.endswith(b"\n") or not jsonl.is_torn_fragment(line):
                    raise RepairConflict(f"{path.name} line {n} is no longer a torn line; "
                                         "run repair again")
                cut.append(line)
            else:
                kept.append(line)
        if len(cut) != len(wanted):
            raise RepairConflict(f"{path.name} is shorter than expected; run repair again")
        done = _write_orphan(orphan_path(path.parent, path.name), b"".join(cut))
        atomic.atomic_write_bytes(path, b"".join(kept))  # under the old inode's flock
    finally:
        os.close(fd)
    done.update(lines=sorted(wanted), kept=len(kept))
    return done


def split_lines(data: bytes) -> list[bytes]:
    """`data` cut after every `\n` only (bytes.splitlines would also cut at `\r`, and line
    numbers must be the ones validation counts)."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    last = lines.pop()
    if last != b"\n":
        lines.append(last[:-1])
    return lines


def set_aside(run_dir: PathLike, relpath: str) -> dict[str, Any]:
    """Rename the leftover temp file `relpath` to an orphan at the top of the run folder.

    Link-then-unlink, so an existing name is never replaced; the bytes are not copied.
    """
    run_dir = Path(run_dir)
    src = run_dir / manifest.check_relpath(relpath) if "/" in relpath else run_dir / relpath
    if src.is_symlink() or not src.is_file() or not layout.is_temp_name(src.name):
        raise RepairConflict(f"{relpath} is not a leftover temp file")
    dst = orphan_path(run_dir, src.name)
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise RepairConflict(f"{dst.name} exists; run repair again") from None
    os.unlink(src)
    atomic.fsync_dir(run_dir)
    if src.parent != run_dir:
        atomic.fsync_dir(src.parent)
    return {"orphan": dst.name, "bytes": dst.stat().st_size}


def mark_crashed(doc: dict[str, Any], now: float | None = None) -> bool:
    """Turn a `running` run.json document into `crashed`, ended at its last heartbeat.

    Returns whether `doc` changed. (Whether the heartbeat is stale is the caller's call:
    `runs.is_stale`.)
    """
    if doc.get("status") != "running":
        return False
    doc["status"] = "crashed"
    if doc.get("ended_at") is None:
        beat = doc.get("heartbeat_at")
        doc["ended_at"] = beat if isinstance(beat, int | float) else (now or time.time())
    return True


def _entry(path: Path, now: float) -> dict[str, Any]:
    if path.is_symlink() or not path.is_file():
        raise RepairConflict(f"{path.name} is not a regular file")
    return {"sha256": manifest.sha256_file(path), "size": path.stat().st_size,
            "added_at": now, "verified": False}


def _checkpointed_digests(run_dir: Path) -> dict[str, str]:
    """run-relative checkpoint file -> the SHA-256 its `checkpointed` event recorded (last)."""
    out = {}
    try:
        for row in jsonl.iter_valid_rows(run_dir / layout.EVENTS):
            detail = row.get("detail")
            if row.get("event") == "checkpointed" and isinstance(detail, dict):
                if isinstance(detail.get("file"), str) and isinstance(detail.get("sha256"), str):
                    out[detail["file"]] = detail["sha256"]
    except OSError:
        pass
    return out


def save_orphan(run_dir: PathLike, name: str, data: bytes) -> dict[str, Any]:
    """Keep `data` (the bytes about to be overwritten in `name`) as `<name>.<time>.orphan`."""
    run_dir = Path(run_dir)
    return _write_orphan(orphan_path(run_dir, name), data)


def rebuild_manifest(run_dir: PathLike) -> dict[str, Any]:
    """Write a missing manifest.json from the files present, every entry `verified: false`.

    A checkpoint whose digest differs from the one its `checkpointed` event recorded is left
    out (it stays untracked and flagged): a tampered file is never recorded as the run's.
    """
    run_dir = Path(run_dir)
    doc = manifest.empty_manifest()
    now = time.time()
    doc["rebuilt_at"] = now
    recorded = _checkpointed_digests(run_dir)
    refused = []
    pointer = f"{layout.CHECKPOINTS}/{layout.LATEST}"
    for rel in manifest.tracked_files(run_dir):
        path = run_dir / rel
        if rel == pointer or path.is_symlink() or not path.is_file():
            continue
        if layout.is_temp_name(path.name):
            continue
        entry = _entry(path, now)
        if rel in recorded and recorded[rel] != entry["sha256"]:
            refused.append(rel)
            continue
        doc["files"][rel] = entry
    with runs.run_lock(run_dir):
        if os.path.lexists(run_dir / layout.MANIFEST):
            raise RepairConflict("manifest.json appeared since validation; not replaced")
        manifest.write_manifest(run_dir, doc)
    return {"files": len(doc["files"]), "refused": refused}


def adopt_files(run_dir: PathLike, relpaths: list[str]) -> dict[str, Any]:
    """Add untracked files to manifest.json as `verified: false` (their writer died between
    writing the file and recording it); a path already listed is a conflict."""
    run_dir = Path(run_dir)
    now = time.time()
    with runs.run_lock(run_dir):
        doc = manifest.read_manifest(run_dir)
        added = {}
        for rel in relpaths:
            if rel in doc["files"]:
                raise RepairConflict(f"{rel} was recorded since validation")
            added[rel] = _entry(run_dir / manifest.check_relpath(rel), now)
        doc["files"].update(added)
        manifest.write_manifest(run_dir, doc)
    return {"files": {rel: e["sha256"] for rel, e in added.items()}}


def forget_files(run_dir: PathLike, relpaths: list[str]) -> dict[str, Any]:
    """Drop the manifest.json entries of files that are gone; returns the entries dropped (the
    caller keeps them in its audit record). A file that is present is a conflict."""
    run_dir = Path(run_dir)
    with runs.run_lock(run_dir):
        doc = manifest.read_manifest(run_dir)
        dropped = {}
        for rel in relpaths:
            if os.path.lexists(run_dir / manifest.check_relpath(rel)):
                raise RepairConflict(f"{rel} exists again; not forgotten")
            if rel in doc["files"]:
                dropped[rel] = doc["files"].pop(rel)
        manifest.write_manifest(run_dir, doc)
    return {"forgotten": dropped}


__all__ = ["ORPHAN_SUFFIX", "save_orphan", "RepairConflict", "adopt_files", "cut_torn_lines", "cut_torn_tail",
           "forget_files", "mark_crashed", "orphan_path", "rebuild_manifest", "set_aside"]
