"""Crash-safe whole-file writes and locked, whole-line appends."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Any


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename/creation inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """`.<name>.tmp-<pid>-<random>` next to `path` (same filesystem, so rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def dumps_json(obj: Any) -> bytes:
    """The canonical whole-file JSON: indented, UTF-8, NaN refused, trailing newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """atomic_write_bytes of `obj` as indented JSON (NaN/Infinity refused)."""
    atomic_write_bytes(path, dumps_json(obj))


def append_line(path: str | os.PathLike[str], data: bytes) -> None:
    """Append one or more complete lines (`data` ends with b"\\n") to `path`.

    One `write` on an O_APPEND descriptor under an exclusive flock on the file itself, so
    concurrent writers (threads or processes) never interleave. If a previous writer died
    mid-line (file does not end with a newline), a newline is written first so that the torn
    fragment stays a separate, detectable corrupt line and `data` stays intact.
    """
    if not data.endswith(b"\n"):
        raise ValueError("append_line: data must end with a newline")
    # O_RDWR (not O_WRONLY) so that the last byte can be checked through the same descriptor.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            _write_all(fd, data)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

