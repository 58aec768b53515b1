"""Checks a TOML/JSON value against a Python annotation (int, float, str, bool, lists, dicts,
unions, Optional, Any), so that a config's type error is reported before anything runs."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

REQUIRED = inspect.Parameter.empty


def describe(annotation: Any) -> str:
    if annotation is REQUIRED or annotation is Any:
        return "any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def matches(value: Any, annotation: Any) -> bool:
    """Whether `value` fits `annotation`; an int fits float, a bool fits only bool."""
    if annotation is REQUIRED or annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(annotation))
    if origin in (list, tuple, typing.List, typing.Sequence) or annotation in (list, tuple):  # noqa: UP006
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(annotation)
        return not args or all(matches(v, args[0]) for v in value)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(annotation)
        return not args or all(matches(v, args[1]) for v in value.values())
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation we cannot check (a forward reference to a class, ...)


def parameters(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """{name: (annotation, default)} of the keyword-passable parameters of `fn`."""
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    out: dict[str, tuple[Any, Any]] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        out[p.name] = (hints.get(p.name, REQUIRED), p.default)
    return out


def accepts_any_keyword(fn: Callable[..., Any]) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def check_params(where: str, given: dict[str, Any], spec: dict[str, tuple[Any, Any]],
                 open_ended: bool = False) -> list[str]:
    """Problems with `given` against `spec`: unknown names, missing required ones, wrong types."""
    problems = []
    for name, value in given.items():
        if name not in spec:
            if not open_ended:
                problems.append(f"{where}: unknown parameter {name!r} (known: {', '.join(sorted(spec)) or 'none'})")
            continue
        annotation = spec[name][0]
        if not matches(value, annotation):
            problems.append(f"{where}: parameter {name!r} must be {describe(annotation)}, "
                            f"got {type(value).__name__} {value!r}")
    for name, (_, default) in spec.items():
        if default is REQUIRED and name not in given:
            problems.append(f"{where}: missing required parameter {name!r}")
    return problems
