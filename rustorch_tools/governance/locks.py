"""The RUNS_DIR-wide lock that serializes commands which move or rewrite runs
(`quarantine`, `release`, `repair`): `RUNS_DIR/.locks/governance.lock` (filelock)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import RustorchToolsError
from ..store.atomic import fsync_dir
from .validate import LOCKS_DIR

LOCK_NAME = "governance.lock"
DEFAULT_TIMEOUT_S = 600.0


class GovernanceLockTimeout(RustorchToolsError):
    """Another quarantine/release/repair held RUNS_DIR for longer than the timeout."""


class UnsafeReservedDir(RustorchToolsError):
    """A reserved folder (.quarantine, .audit, .locks) is a link or a file: writing into it
    could land outside RUNS_DIR, so governance refuses to."""


def reserved_dir(runs_dir: Path, name: str, create: bool = True) -> Path:
    """`RUNS_DIR/<name>` as a real folder (created if asked); refuses links and files."""
    path = Path(runs_dir) / name
    if create and not os.path.lexists(path):
        try:
            path.mkdir()
            fsync_dir(Path(runs_dir))
        except FileExistsError:
            pass  # a concurrent command created it: checked below like any other
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        raise UnsafeReservedDir(f"{path} must be a folder inside RUNS_DIR (found a link or "
                                "a file); move it away first")
    return path


@contextmanager
def governance_lock(runs_dir: Path, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    ldir = reserved_dir(runs_dir, LOCKS_DIR)
    lock = FileLock(str(ldir / LOCK_NAME))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as e:
        raise GovernanceLockTimeout(
            f"{ldir / LOCK_NAME} is held by another command (waited {timeout:g} s)") from e
    try:
        yield
    finally:
        lock.release()
