"""Turn command-line run arguments (folders or ids) into summaries, via the delta index."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidNameError
from ..store import layout
from .index import RunIndex
from .summary import RunSummary


class RunLookupError(Exception):
    """A run argument that names no readable run; the message says why."""


class RunSource:
    """One refreshed index per RUNS_DIR touched by a command."""

    def __init__(self) -> None:
        self._indexes: dict[Path, RunIndex] = {}

    def index(self, runs_dir: str | os.PathLike[str]) -> RunIndex:
        key = Path(runs_dir).resolve()
        if key not in self._indexes:
            if not key.is_dir():
                raise RunLookupError(f"runs directory not found: {runs_dir}")
            ix = RunIndex(key)
            ix.refresh()
            self._indexes[key] = ix
        return self._indexes[key]

    def locate(self, arg: str, runs_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
        """(RUNS_DIR, run id) for a run folder path or a run id under `runs_dir`."""
        path = Path(arg)
        if runs_dir is not None and os.sep not in arg and not (os.altsep and os.altsep in arg):
            candidate = Path(runs_dir) / arg
            if candidate.is_dir() or not path.is_dir():
                try:
                    layout.validate_run_id(arg)
                except InvalidNameError as exc:
                    raise RunLookupError(str(exc)) from None
                return Path(runs_dir), arg
        if path.is_dir():
            resolved = path.resolve()
            return resolved.parent, resolved.name
        if runs_dir is None:
            raise RunLookupError(f"{arg!r} is not a run directory (give --runs-dir to look up run ids)")
        raise RunLookupError(f"run {arg!r} not found")

    def get(self, arg: str, runs_dir: str | os.PathLike[str] | None) -> RunSummary:
        root, run_id = self.locate(arg, runs_dir)
        ix = self.index(root)
        found = ix.summaries([run_id])
        if found:
            return found[0]
        for b in ix.broken():
            if b.run_id == run_id:
                raise RunLookupError(f"run {run_id!r} is unreadable: {b.error}")
        raise RunLookupError(f"run {run_id!r} not found in {root}")

    def close(self) -> None:
        for ix in self._indexes.values():
            ix.close()
        self._indexes.clear()

    def __enter__(self) -> RunSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
