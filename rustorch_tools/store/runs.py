"""run.json, metrics.jsonl and events.jsonl of one run directory."""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptRunError,
    LinkedFileError,
    RunNotFoundError,
    SchemaValidationError,
)
from . import atomic, fastjson, jsonl, layout, locks, schema

STALE_FACTOR = 3.0
STALE_MIN_S = 60.0
LOCK_TIMEOUT_S = locks.RUN_LOCK_TIMEOUT_S

PathLike = str | os.PathLike[str]


@contextmanager
def run_lock(run_dir: PathLike, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive lock guarding run.json / manifest.json rewrites (re-entrant per thread)."""
    if not Path(run_dir).is_dir():
        raise RunNotFoundError(f"no run directory at {run_dir}")
    with locks.run_lock(run_dir, timeout):
        yield


def _read_contained(path: Path) -> bytes:
    if path.is_symlink():
        target = path.resolve()
        runs_root = path.parent.resolve().parent
        if not target.is_relative_to(runs_root):
            raise LinkedFileError(
                errno.ELOOP, f"{path} is a symbolic link to {target}, outside {runs_root}; "
                "refusing to read it")
        path = target
    # O_NONBLOCK: a FIFO planted as run.json must not hang the reader.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise CorruptRunError(f"{path} is not a regular file")
        return fh.read()


def read_run_raw(run_dir: PathLike) -> dict[str, Any]:
    """run.json exactly as stored (no migration, no validation).

    A run.json that is a symbolic link is read only if it resolves inside RUNS_DIR (the
    folder holding `run_dir`); one pointing elsewhere raises LinkedFileError, so that a
    planted link cannot make the tools read (and report or copy) an outside file.
    """
    path = Path(run_dir) / layout.RUN_JSON
    try:
        data = _read_contained(path)
    except FileNotFoundError:
        raise RunNotFoundError(f"no {layout.RUN_JSON} in {run_dir}") from None
    except IsADirectoryError:
        raise CorruptRunError(f"{path} is a directory") from None
    try:
        doc = fastjson.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:  # NaN, deep nesting, overflow included
        raise CorruptRunError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise CorruptRunError(f"{path}: a JSON {type(doc).__name__}, not an object")
    return doc


def read_run(run_dir: PathLike, validate: bool = True) -> dict[str, Any]:
    """run.json migrated in memory to the current schema version (the file is not touched).

    Raises RunNotFoundError, CorruptRunError (bad JSON or, with `validate`, schema
    violations) or UnsupportedSchemaVersion (written by a newer version).
    """
    doc, _ = schema.migrate_run(read_run_raw(run_dir))
    if validate:
        errors = schema.validate_document("run", doc)
        if errors:
            raise CorruptRunError(f"{Path(run_dir) / layout.RUN_JSON}: " + "; ".join(errors))
    return doc


def write_run(run_dir: PathLike, doc: dict[str, Any]) -> None:
    """Validate `doc` and replace run.json atomically, under the run lock."""
    errors = schema.validate_document("run", doc)
    if errors:
        raise SchemaValidationError("run", errors)
    data = atomic.dumps_json(doc)
    with run_lock(run_dir):
        atomic.atomic_write_bytes(Path(run_dir) / layout.RUN_JSON, data)


def update_run(run_dir: PathLike, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write run.json under the run lock; `change` edits the doc in place.

    A legacy document is migrated and written back as the current version. Returns the
    document written.
    """
    with run_lock(run_dir):
        doc = read_run(run_dir, validate=False)
        change(doc)
        write_run(run_dir, doc)
    return doc


def append_rows(path: PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Append `rows` as self-checking lines in one locked write; returns the count."""
    data = b"".join(jsonl.encode_row(r) for r in rows)
    if not data:
        return 0
    atomic.append_line(path, data)
    return data.count(b"\n")


def append_event(
    run_dir: PathLike,
    event: str,
    detail: dict[str, Any] | None = None,
    rank: int | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Append one event to events.jsonl (validated against event.v1.json); returns it."""
    row: dict[str, Any] = {"time": time.time() if now is None else now, "event": event}
    if rank is not None:
        row["rank"] = rank
    row["pid"] = os.getpid()
    if detail:
        row["detail"] = detail
    errors = schema.validate_document("event", row)
    if errors:
        raise SchemaValidationError("event", errors)
    append_rows(Path(run_dir) / layout.EVENTS, [row])
    return row


def iter_metrics(run_dir: PathLike) -> Iterator[dict[str, Any]]:
    """Valid metric rows in file order, non-finite values restored to floats.

    Corrupt or incomplete lines are skipped here; `jsonl.scan` reports them.
    """
    for row in jsonl.iter_valid_rows(Path(run_dir) / layout.METRICS):
        yield jsonl.restore_nonfinite(row)


def iter_events(run_dir: PathLike) -> Iterator[dict[str, Any]]:
    """Valid events in file order (corrupt lines skipped; `jsonl.scan` reports them)."""
    yield from jsonl.iter_valid_rows(Path(run_dir) / layout.EVENTS)


def stale_after_s(run_doc: dict[str, Any]) -> float:
    """Heartbeat age after which a running run counts as crashed: 3 × interval, min 60 s."""
    interval = run_doc.get("heartbeat_interval_s") or schema.DEFAULT_HEARTBEAT_INTERVAL_S
    return max(STALE_FACTOR * float(interval), STALE_MIN_S)


def process_start_time(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (Linux /proc), None if unknown
    or the process does not exist. With the pid it names one process across pid reuse."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def writer_identity() -> dict[str, Any]:
    """What run.json `writer` records about this process."""
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "start_time": process_start_time(os.getpid())}


def writer_state(run_doc: dict[str, Any]) -> str:
    """`alive`, `dead` or `unknown` for the process run.json `writer` names.

    Decided from pid + host + process start time, so a suspended writer (SIGSTOP, a debugger)
    is alive whatever its heartbeat age, and a recycled pid is not mistaken for the writer.
    Another host, or no start time recorded: unknown (the heartbeat decides).
    """
    writer = run_doc.get("writer")
    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname():
        return "unknown"
    pid, started = writer.get("pid"), writer.get("start_time")
    if type(pid) is not int or type(started) is not int or pid <= 0:
        return "unknown"
    if process_start_time(os.getpid()) is None:
        return "unknown"  # no /proc here: cannot tell
    return "alive" if process_start_time(pid) == started else "dead"


def is_stale(run_doc: dict[str, Any], now: float | None = None) -> bool:
    """True when the run says `running` but its writer is gone: by pid + host + process
    start time when run.json records them (a single writer), else by heartbeat age."""
    if run_doc.get("status") != "running":
        return False
    state = writer_state(run_doc)
    if state == "alive":
        return False
    if state == "dead" and not run_doc.get("ranks"):
        return True
    beat = run_doc.get("heartbeat_at")
    if not isinstance(beat, int | float):
        return True
    now = time.time() if now is None else now
    return now - float(beat) > stale_after_s(run_doc)


def effective_status(run_doc: dict[str, Any], now: float | None = None) -> str:
    """The status a reader should show: `crashed` for a stale `running` run."""
    return "crashed" if is_stale(run_doc, now) else str(run_doc.get("status"))
