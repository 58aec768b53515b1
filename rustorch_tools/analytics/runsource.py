"""Turn command-line run arguments (folders or ids) into summaries, via the delta index."""

from __future__ import annotations

import os
from pathlib import Path

from ..store import layout
from .index import RunIndex
from .summary import RunSummary


class RunLookupError(Exception):
    """A run argument that names no readable run; the message says why."""


class RunSource:
    """One refreshed index per RUNS_DIR touched by a command."""

    def __init__(self) -> None:
        self._indexes: dict[Path, RunIndex] = {}
        self._memory_only: set[Path] = set()

    def index(self, runs_dir: str | os.PathLike[str]) -> RunIndex:
        key = Path(runs_dir).resolve()
        if key not in self._indexes:
            if not key.is_dir():
                raise RunLookupError(f"runs directory not found: {runs_dir}")
            # A run named inside a reserved folder (.quarantine/<id>) gets no .index written
            # there: governance owns that area.
            # A run reached through a symbolic link gets no .index written next to its
            # target either: only RUNS_DIR itself is ever written.
            ix = RunIndex(key, in_memory=key.name.startswith(".") or key in self._memory_only)
            ix.refresh()
            self._indexes[key] = ix
        return self._indexes[key]

    def locate(self, arg: str, runs_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
        """(RUNS_DIR, run id) for a run folder path or a run id under `runs_dir`."""
        path = Path(arg)
        if runs_dir is not None and os.sep not in arg and not (os.altsep and os.altsep in arg):
            candidate = Path(runs_dir) / arg
            if candidate.is_dir() or not path.is_dir():
                return Path(runs_dir), arg  # an id, a unique id prefix or a run name
        if path.is_dir():
            resolved = path.resolve()
            if resolved != path.absolute():  # reached through a link: read, never write there
                self._memory_only.add(resolved.parent)
            return resolved.parent, resolved.name
        if runs_dir is None:
            raise RunLookupError(f"{arg!r} is not a run directory (give --runs-dir to look up run ids)")
        raise RunLookupError(f"run {arg!r} not found")

    def get(self, arg: str, runs_dir: str | os.PathLike[str] | None) -> RunSummary:
        root, run_id = self.locate(arg, runs_dir)
        ix = self.index(root)
        found = ix.summaries([run_id]) if layout.RUN_ID_RE.fullmatch(run_id) else []
        if found:
            return found[0]
        matches = [s for s in ix.summaries() if s.run_id.startswith(run_id) or s.name == run_id]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(s.run_id for s in matches)[:10])
            raise RunLookupError(f"{run_id!r} matches {len(matches)} runs in {root}: {names}; "
                                 "give more of the run id")
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
