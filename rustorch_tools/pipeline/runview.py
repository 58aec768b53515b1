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
from ..store.runstore import RunStore


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


def artifact_names(directory: Path, prefix: str = "") -> list[str]:
    """The run's artifact files whose names start with `prefix` (regular files only)."""
    return RunStore.of_run_dir(directory).artifact_names(prefix)


def read_artifact(directory: Path, name: str, limit: int) -> bytes:
    """One artifact's bytes (a regular file of at most `limit` bytes, else RustorchToolsError)."""
    return RunStore.of_run_dir(directory).read_artifact(name, limit)
