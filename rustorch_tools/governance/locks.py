"""The RUNS_DIR-wide lock that serializes commands which move or rewrite runs
(`quarantine`, `release`, `repair`): `RUNS_DIR/.locks/governance.lock` (filelock)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import RustorchToolsError
from .validate import LOCKS_DIR

LOCK_NAME = "governance.lock"
DEFAULT_TIMEOUT_S = 600.0


class GovernanceLockTimeout(RustorchToolsError):
    """Another quarantine/release/repair held RUNS_DIR for longer than the timeout."""


@contextmanager
def governance_lock(runs_dir: Path, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    ldir = Path(runs_dir) / LOCKS_DIR
    ldir.mkdir(exist_ok=True)
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
