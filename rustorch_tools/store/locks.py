"""Every lock the store takes, in one place.

- `run_lock(run_dir)`: one run's `.lock` (filelock, re-entrant per thread) around run.json /
  manifest.json / checkpoints rewrites;
- `tree_lock(runs_dir)`: `RUNS_DIR/.locks/governance.lock` around commands that move or rewrite
  runs (quarantine, release, repair);
- `audit_lock(audit_dir)`: `.audit/log.lock` serializing audit appends;
- `index_lock(index_dir)`: `.index/analytics.lock` serializing index refreshes;
- `execution_lock(path)`: `.pipelines/<name>/exec/<id>/lock`, held while a pipeline stage
  execution runs (a second attempt waits for the first, however long the stage takes);
- `flocked(fd)`: the flock on a JSONL file itself that appenders and repair share.
All are advisory locks on files inside RUNS_DIR; a reserved folder that is a link is refused
before any lock file is created in it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from ..errors import RustorchToolsError

LOCKS_DIR = ".locks"
RUN_LOCK_NAME = ".lock"
TREE_LOCK_NAME = "governance.lock"
AUDIT_LOCK_NAME = "log.lock"
INDEX_LOCK_NAME = "analytics.lock"
RUN_LOCK_TIMEOUT_S = 120.0
TREE_LOCK_TIMEOUT_S = 600.0


class LockTimeout(RustorchToolsError):
    """A lock stayed held by another process for longer than the timeout."""


class GovernanceLockTimeout(LockTimeout):
    """Another quarantine/release/repair held RUNS_DIR for longer than the timeout."""


class UnsafeReservedDir(RustorchToolsError):
    """A reserved folder (.quarantine, .audit, .locks, .index) is a link or a file: writing into
    it could land outside RUNS_DIR, so the store refuses to."""


def _file_lock(path: Path, singleton: bool = False) -> filelock.BaseFileLock:
    if singleton:
        return filelock.FileLock(str(path), is_singleton=True, preserve_lock_file=True)
    return filelock.FileLock(str(path))


@contextmanager
def _held(lock: filelock.BaseFileLock, timeout: float, error: type[LockTimeout],
          what: str) -> Iterator[None]:
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout as exc:
        raise error(f"{lock.lock_file} is held by another process ({what}; waited "
                    f"{timeout:g} s)") from exc
    try:
        yield
    finally:
        lock.release()


@contextmanager
def run_lock(run_dir: str | os.PathLike[str], timeout: float = RUN_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive lock of one run (re-entrant within a thread: one lock object per path)."""
    path = Path(os.path.abspath(os.path.join(run_dir, RUN_LOCK_NAME)))
    if path.is_symlink():
        raise UnsafeReservedDir(f"{path} is a symbolic link; refusing to lock through it")
    with _held(_file_lock(path, singleton=True), timeout, LockTimeout, "run lock"):
        yield


@contextmanager
def tree_lock(locks_dir: Path, timeout: float = TREE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """The RUNS_DIR-wide governance lock; `locks_dir` is the checked `.locks` folder."""
    with _held(_file_lock(locks_dir / TREE_LOCK_NAME), timeout, GovernanceLockTimeout,
               "governance lock"):
        yield


@contextmanager
def audit_lock(audit_dir: Path, timeout: float = TREE_LOCK_TIMEOUT_S) -> Iterator[None]:
    with _held(_file_lock(audit_dir / AUDIT_LOCK_NAME), timeout, LockTimeout, "audit lock"):
        yield


def index_lock(index_dir: Path) -> filelock.BaseFileLock:
    """The refresh lock of the analytics index (the caller acquires it with its own timeout)."""
    return _file_lock(index_dir / INDEX_LOCK_NAME)


@contextmanager
def execution_lock(path: Path) -> Iterator[None]:
    """The lock of one pipeline stage execution (no timeout: a stage may run for hours)."""
    if path.is_symlink():
        raise UnsafeReservedDir(f"{path} is a symbolic link; refusing to lock through it")
    lock = _file_lock(path)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def flocked(fd: int) -> Iterator[None]:
    """Exclusive flock on an open file: what appenders and repair take on a JSONL file."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
