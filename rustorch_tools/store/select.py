"""Which run a command-line argument names: a run id, a unique prefix of one, or a run name.

Every command that names a run under RUNS_DIR resolves it here, so the rule is the same
everywhere: an exact run id wins; else the runs whose id starts with the argument; else the
runs whose `name` (in run.json) equals it. No match, or more than one, is an error that
lists the candidates (at most 10). Quarantined runs are looked up only when asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidNameError, RunNotFoundError, RustorchToolsError
from . import layout, runs

_MAX_LISTED = 10


class AmbiguousRunError(RunNotFoundError):
    """An argument that names more than one run (a shared prefix or name)."""


def _listed(ids: list[str]) -> str:
    shown = ", ".join(layout.printable(i) for i in ids[:_MAX_LISTED])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED else "")


def select_run(root: str | os.PathLike[str], selector: str) -> Path:
    """The folder of the one run under `root` that `selector` names (id, unique id prefix or
    run name). Raises RunNotFoundError (AmbiguousRunError for several matches) naming `root`
    as the user gave it."""
    root = Path(root)
    shown = layout.printable(selector)
    if not root.is_dir():
        raise RunNotFoundError(f"runs directory not found: {root}")
    if not selector or "/" in selector or os.sep in selector:
        raise InvalidNameError(f"{shown!r} is not a run id, prefix or name")
    if layout.RUN_ID_RE.fullmatch(selector):
        exact = root / selector
        if exact.is_dir() and not exact.is_symlink() and not selector.startswith("."):
            return exact
    dirs = list(layout.iter_run_dirs(root))
    by_prefix = [d for d in dirs if d.name.startswith(selector)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise AmbiguousRunError(f"{shown!r} is a prefix of {len(by_prefix)} runs in {root}: "
                                f"{_listed([d.name for d in by_prefix])}; give more of the run id")
    by_name = []
    for d in dirs:
        try:
            doc = runs.read_run_raw(d)
        except (RustorchToolsError, OSError, ValueError):
            continue  # an unreadable run has no name to match; validate reports it
        if doc.get("name") == selector:
            by_name.append(d)
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise AmbiguousRunError(f"{len(by_name)} runs in {root} are named {shown!r}: "
                                f"{_listed([d.name for d in by_name])}; give the run id")
    raise RunNotFoundError(f"no run {shown!r} in {root} (not an id, an id prefix or a run name)")


__all__ = ["AmbiguousRunError", "select_run"]
