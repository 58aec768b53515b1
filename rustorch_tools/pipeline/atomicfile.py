"""Crash-safe JSON files of the pipeline state folder (temp in the same dir, fsync, rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False, default=str).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def link_into_place(src: Path, dest: Path) -> None:
    """Make `dest` name the (already durable) file `src` atomically: a hard link under a temp
    name, renamed over `dest`; only the directory needs syncing."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.link(src, tmp)
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)


MAX_STATE_BYTES = 64 * 1024 * 1024


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None when it is absent; ValueError when it is not a plain
    readable JSON file (a link, a FIFO, too big, malformed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file")
    if st.st_size > MAX_STATE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_STATE_BYTES} bytes")
    with open(path, "rb") as f:
        try:
            return json.loads(f.read())
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{path}: {exc}") from None
