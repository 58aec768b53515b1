"""Strict, fast JSON for every document and row the store reads (orjson).

Strict where the files are hostile: NaN/Infinity literals, nesting deeper than 1024 levels,
numbers that overflow a double and invalid UTF-8 or lone surrogates are refused with a
ValueError (json.JSONDecodeError), never a RecursionError or a silent NaN. Integers beyond 64
bits come back as floats (schemas that want integers then reject them).
"""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError  # a subclass of json.JSONDecodeError / ValueError


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)


def dumps_compact(obj: Any) -> bytes:
    """Compact UTF-8 JSON (no NaN: orjson writes null for it, so callers check first)."""
    return orjson.dumps(obj)
