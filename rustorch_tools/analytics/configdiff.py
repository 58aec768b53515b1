"""Flatten nested configs into dotted keys and diff them.

Keys: `a.b.c` for dicts, `a.b[2]` for list items. A dict key that itself holds a `.`,
`[` or `]` is quoted (`a."x.y"`) so that two different nestings never flatten to the
same key.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

_PLAIN_KEY = re.compile(r"[^.\[\]\"]+")

_MISSING = object()


def _key_part(key: object) -> str:
    text = str(key)
    if _PLAIN_KEY.fullmatch(text):
        return text
    return json.dumps(text)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "c": [1, {"d": 2}]}` → `{"a.b": 1, "c[0]": 1, "c[1].d": 2}`.

    Empty dicts and lists are kept as leaves (`{}` / `[]`) so that "set to empty" is a change.
    """
    out: dict[str, Any] = {}
    _flatten_into(obj, prefix, out)
    return out


def _flatten_into(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            part = _key_part(key)
            _flatten_into(value, f"{prefix}.{part}" if prefix else part, out)
    elif isinstance(obj, list | tuple) and obj:
        for i, value in enumerate(obj):
            _flatten_into(value, f"{prefix}[{i}]", out)
    else:
        out[prefix] = obj


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclass(frozen=True)
class DiffEntry:
    """One differing key: `change` is `added` (only in b), `removed` (only in a) or `changed`."""

    key: str
    change: str
    a: Any
    b: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "change": self.change, "a": self.a, "b": self.b}


def diff(a: Any, b: Any) -> list[DiffEntry]:
    """Differences between two nested objects, sorted by key. `1` and `1.0` are equal."""
    return diff_flat(flatten(a), flatten(b))


def diff_flat(fa: dict[str, Any], fb: dict[str, Any]) -> list[DiffEntry]:
    """`diff` of two already flattened objects (lets a caller flatten a reference once)."""
    if fa == fb and all(type(fa[k]) is type(fb[k]) for k in fa):
        return []
    entries: list[DiffEntry] = []
    for key in sorted(fa.keys() | fb.keys()):
        va, vb = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if va is _MISSING:
            entries.append(DiffEntry(key, "added", None, vb))
        elif vb is _MISSING:
            entries.append(DiffEntry(key, "removed", va, None))
        elif not _same(va, vb):
            entries.append(DiffEntry(key, "changed", va, vb))
    return entries


def config_fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-like object (key order does not matter)."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
