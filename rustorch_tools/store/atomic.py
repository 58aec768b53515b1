"""Crash-safe whole-file writes and locked, whole-line appends."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import LinkedFileError


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


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[BinaryIO]:
    """Replace `path` with what the block writes, so that a crash leaves the old or the new
    file, never a torn one.

    Yields a temp file (mode 0644, umask applied) next to `path`, opened without following
    links; when the block ends normally it is flushed and renamed over `path` (a link at
    `path` is thereby replaced, never written through). With `durable`, the file is fsynced
    before the rename and the folder after it; without, a crash may lose the new content
    (disposable caches). Errors name `path`, never the temp file, and the temp file never
    outlives a failure. Large writes go from the caller's buffer straight to the kernel.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise _about(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _about(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def _replace_with(path: Path, data: bytes | memoryview, durable: bool) -> None:
    with atomic_file(path, durable=durable) as fh:
        fh.write(data)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    _replace_with(Path(path), data, durable=True)


def replace_unsynced(path: str | os.PathLike[str], data: bytes) -> None:
    """Temp file + rename without fsync, for disposable caches (the validation cache): a
    crash may lose the new content but never leaves a torn file; a link at `path` is
    replaced, not written through."""
    _replace_with(Path(path), data, durable=False)


def _about(exc: OSError, path: Path) -> OSError:
    """The same error naming the file the user asked for, not our temp file next to it."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


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

    A symbolic link at `path` (even a dangling one) or a file with other hard links is
    refused with LinkedFileError: appending through it could write into any file. If the
    file was replaced while waiting for the lock (repair rewrites a file under that lock),
    the new file is opened and locked instead, so no line goes to an unlinked inode.
    """
    if not data.endswith(b"\n"):
        raise ValueError("append_line: data must end with a newline")
    while True:
        fd = _open_for_append(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if not _still_at(path, fd):
                    continue  # repair replaced the file while we waited: append to the new one
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                try:
                    _write_all(fd, data)
                except BaseException:
                    # ENOSPC / EFBIG / EIO mid-write: cut back to the last whole line so that
                    # no torn line is left; the caller keeps the rows and sees the error.
                    os.ftruncate(fd, size)
                    raise
                return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _open_for_append(path: str | os.PathLike[str]) -> int:
    # O_RDWR (not O_WRONLY) so that the last byte can be checked through the same descriptor.
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkedFileError(
                errno.ELOOP, f"{path} is a symbolic link; refusing to append through it") from None
        raise
    if os.fstat(fd).st_nlink > 1:
        os.close(fd)
        raise LinkedFileError(errno.EMLINK, f"{path} has other hard links; refusing to append to it")
    return fd


def _still_at(path: str | os.PathLike[str], fd: int) -> bool:
    """Whether `fd` is still the file at `path` (not replaced by an atomic rewrite)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextmanager
def output_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A user's output file (a report, an export): atomic_file, durable, after refusing a
    folder at `path` up front. A symbolic or hard link at `path` is replaced, never written
    through, so the file it pointed to is left untouched. Nothing is left behind on error."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    with atomic_file(path, durable=True) as fh:
        yield fh


def write_output(path: str | os.PathLike[str], data: bytes) -> None:
    """output_file with all of `data` at once."""
    with output_file(path) as fh:
        fh.write(data)
