"""Turning user-supplied config / params into plain JSON, with errors that name the key."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .errors import NotSerializableError


def to_json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` (a Mapping, dataclass instance or argparse.Namespace) as a JSON-ready dict.

    Raises NotSerializableError naming the first offending key path: non-string keys,
    non-finite floats, or values that are not None/bool/int/float/str/list/tuple/dict.
    """
    if value is None:
        return {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, argparse.Namespace):
        value = vars(value)
    if not isinstance(value, Mapping):
        raise NotSerializableError(f"{what} must be a mapping, got {type(value).__name__}")
    return _convert(value, what)


def _convert(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotSerializableError(f"{path} is {value!r}: JSON has no NaN/Infinity")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotSerializableError(
                    f"{path} has key {key!r} of type {type(key).__name__}; keys must be strings"
                )
            out[key] = _convert(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_convert(item, f"{path}[{i}]") for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars, 1-element tensors
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return _convert(item(), path)
        except NotSerializableError:
            raise
        except Exception:
            pass
    raise NotSerializableError(
        f"{path} = {value!r:.80} of type {type(value).__name__} is not JSON-serializable "
        "(use None, bool, int, float, str, list or dict)"
    )
