"""The few read-only questions pipelines and trace export ask of RUNS_DIR, in one place.

Everything here goes through rustorch_tools.store (the module that owns the on-disk format);
no other pipeline or trace module reads run files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..store import layout, runs


def run_dir(runs_dir: str | os.PathLike[str], run_id: str) -> Path:
    return layout.run_dir(runs_dir, run_id)


def read(runs_dir: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    """run.json of a run, or None when it is absent or unreadable."""
    try:
        return runs.read_run(layout.run_dir(runs_dir, run_id))
    except (OSError, ValueError, RustorchToolsError):
        return None


def status(runs_dir: str | os.PathLike[str], run_id: str) -> str | None:
    """finished / failed / running / crashed (a stale `running`), or None when absent."""
    doc = read(runs_dir, run_id)
    return None if doc is None else runs.effective_status(doc)


def metrics(directory: Path) -> Iterator[dict[str, Any]]:
    return runs.iter_metrics(directory)


def events(directory: Path) -> Iterator[dict[str, Any]]:
    return runs.iter_events(directory)


def artifacts(directory: Path, prefix: str = "") -> list[Path]:
    """The run's artifact files whose names start with `prefix` (regular files only)."""
    root = directory / layout.ARTIFACTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(prefix) and p.is_file() and not p.is_symlink())
