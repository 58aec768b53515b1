"""Names and paths inside RUNS_DIR (docs/runs-format.md)."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidNameError

RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"
ARTIFACTS = "artifacts"
LOCK = ".lock"
LATEST = "latest"  # pointer file inside checkpoints/

QUARANTINE_DIR = ".quarantine"
AUDIT_DIR = ".audit"
INDEX_DIR = ".index"
PIPELINES_DIR = ".pipelines"  # pipeline state (rustorch_tools.pipeline)

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Metric names are keys, never paths: any printable text, no leading "_" (reserved keys).
METRIC_NAME_MAX = 200
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")


def validate_run_id(run_id: object) -> str:
    """Return `run_id` if it is a valid run id, else raise InvalidNameError saying why."""
    if not isinstance(run_id, str):
        raise InvalidNameError(f"run id must be a string, got {type(run_id).__name__}")
    if run_id in (".", "..") or "/" in run_id or "\\" in run_id or os.sep in run_id:
        raise InvalidNameError(f"run id {run_id!r} must not be '.', '..' or contain a path separator")
    if not RUN_ID_RE.fullmatch(run_id):
        raise InvalidNameError(
            f"run id {run_id!r} must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}"
        )
    return run_id


def validate_name(name: object, what: str = "name", max_len: int = 128) -> str:
    """A user-chosen name that may end up in a path (run name, artifact, checkpoint name)."""
    if not isinstance(name, str):
        raise InvalidNameError(f"{what} must be a string, got {type(name).__name__}")
    if not name or len(name) > max_len:
        raise InvalidNameError(f"{what} {name!r} must have 1 to {max_len} characters")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise InvalidNameError(f"{what} {name!r} must not contain a path separator")
    if ".." in name or name == ".":
        raise InvalidNameError(f"{what} {name!r} must not contain '..' or be '.'")
    if _CONTROL_RE.search(name):
        raise InvalidNameError(f"{what} {name!r} must not contain control characters")
    return name


def validate_metric_name(name: object) -> str:
    """Metric names: non-empty strings, at most 200 chars, no leading '_', no control chars."""
    if not isinstance(name, str):
        raise InvalidNameError(f"metric name must be a string, got {type(name).__name__}: {name!r}")
    if not name or len(name) > METRIC_NAME_MAX:
        raise InvalidNameError(f"metric name {name!r} must have 1 to {METRIC_NAME_MAX} characters")
    if name[0] == "_":
        raise InvalidNameError(f"metric name {name!r} must not start with '_' (reserved keys)")
    if name in ("step", "time", "rank"):
        raise InvalidNameError(f"metric name {name!r} is a reserved row field")
    if _CONTROL_RE.search(name):
        raise InvalidNameError(f"metric name {name!r} must not contain control characters")
    return name


_UNPRINTABLE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` safe to print on a terminal: control characters (ANSI escapes, newlines,
    bidi overrides) shown as `\\xNN` / `\\uNNNN` escapes, everything else unchanged."""
    text = str(text)
    if not _UNPRINTABLE_RE.search(text):
        return text
    return _UNPRINTABLE_RE.sub(lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100
                               else f"\\u{ord(m.group()):04x}", text)


def new_run_id(name: str | None = None, now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-<slug of name>-<8 hex>`, sortable by creation time (UTC)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    slug = _SLUG_RE.sub("-", name or "run").strip("-_")[:80] or "run"
    return validate_run_id(f"{stamp}-{slug}-{secrets.token_hex(4)}")


def run_dir(root: str | os.PathLike[str], run_id: str) -> Path:
    """The directory of run `run_id` under `root` (not created)."""
    return Path(root) / validate_run_id(run_id)


def iter_run_dirs(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Run directories under `root`, sorted by name; skips reserved dot-folders and plain files.

    A directory whose name is not a valid run id is skipped too (it cannot be a run).
    """
    root = Path(root)
    if not root.is_dir():
        return
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        if RUN_ID_RE.fullmatch(entry.name):
            yield Path(entry.path)


def is_temp_name(name: str) -> bool:
    """Temp files of atomic writes: `.<name>.tmp-<pid>-<random>`."""
    return name.startswith(".") and ".tmp-" in name
