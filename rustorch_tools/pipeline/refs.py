"""`${...}` references in stage params and commands.

A string that is exactly one reference takes the referenced value as is (a number stays a
number, a list stays a list); a reference inside a longer string is interpolated as text.
Names: `matrix.<key>` (the stage's own sweep point), `vars.<key>` (the [vars] table),
`pipeline.name|dir|runs_dir|python` (python: this interpreter), `self.outputs_dir` (a folder
whose files become the stage run's artifacts), `<stage>.run_id|run_dir|outputs.<key>`. A stage swept by a
matrix yields the list of its instances' values, in matrix order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

REF = re.compile(r"\$\{([A-Za-z0-9_.\-/]+)\}")
STAGE_FIELDS = ("run_id", "run_dir", "outputs")


class RefError(ValueError):
    pass


def find(value: Any) -> Iterator[str]:
    """Every reference path inside a (nested) value."""
    if isinstance(value, str):
        yield from REF.findall(value)
    elif isinstance(value, list):
        for v in value:
            yield from find(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from find(v)


def substitute(value: Any, lookup: Callable[[str], Any]) -> Any:
    """`value` with every reference replaced through `lookup(path)`."""
    if isinstance(value, str):
        whole = REF.fullmatch(value)
        if whole:
            return lookup(whole.group(1))

        def text(m: re.Match[str]) -> str:
            v = lookup(m.group(1))
            return " ".join(map(str, v)) if isinstance(v, list) else str(v)

        return REF.sub(text, value)
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    return value


def substitute_argv(argv: list[str], lookup: Callable[[str], Any]) -> list[str]:
    """A command line: a whole-argument reference to a list becomes several arguments."""
    out: list[str] = []
    for arg in argv:
        v = substitute(arg, lookup)
        if isinstance(v, list):
            out.extend(str(x) for x in v)
        elif isinstance(v, dict):
            raise RefError(f"argument {arg!r} names a table; commands take strings")
        else:
            out.append(str(v))
    return out


def stage_of(path: str) -> str | None:
    """The stage a reference path names (None for matrix/vars/pipeline)."""
    head = path.split(".", 1)[0]
    return None if head in ("matrix", "vars", "pipeline", "self") else head
