"""JSON Schemas of the run files and migration of older run.json layouts.

Schemas: `rustorch_tools/schemas/<name>.v<N>.json` with name in `run`, `metric_row`, `event`,
`manifest` (draft 2020-12). The writers and `validate_document` use these same files.

Schema version 0 (legacy, before this format was versioned) is the run.json layout:
`{"run_id", "name"?, "state": "RUNNING"|"FINISHED"|"FAILED"|"KILLED", "start_time",
"end_time", "last_heartbeat"?, "params", "tags": [str] | {str: str}, "seed"?, "error"?: str}`
with no `schema_version` key (or `0`). `migrate_run` turns it into version 1: `state` →
`status` (KILLED → crashed), times renamed, `config` = {}, tags list → {tag: ""}.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

import jsonschema

from ..errors import UnsupportedSchemaVersion

SCHEMA_VERSION = 1
SCHEMA_NAMES = ("run", "metric_row", "event", "manifest")
DEFAULT_HEARTBEAT_INTERVAL_S = 10.0

_V0_STATES = {"RUNNING": "running", "FINISHED": "finished", "FAILED": "failed", "KILLED": "crashed"}


@functools.cache
def load_schema(name: str, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema `name` (one of SCHEMA_NAMES) of `version`, as a dict (cached)."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files("rustorch_tools.schemas").joinpath(f"{name}.v{version}.json").read_text()
    return json.loads(text)


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_document(name: str, obj: Any) -> list[str]:
    """Every schema violation of `obj` against schema `name`, as `"<json path>: <message>"`.

    Empty when valid. Messages are sorted by path so that output is stable. The compiled
    validator (compiled_schema, microseconds) answers first; jsonschema, which builds its
    validator in ~0.2 s and checks in ~1 ms, only writes the messages of an invalid document.
    """
    from .compiled_schema import is_valid

    if is_valid(name, obj):
        return []
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for err in errors:
        where = "/".join(str(p) for p in err.absolute_path) or "(document)"
        out.append(f"{where}: {err.message}")
    return out


def document_version(obj: dict[str, Any], what: str) -> int:
    """The `schema_version` of a whole-file document (0 when absent); refuses newer ones."""
    version = obj.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UnsupportedSchemaVersion(f"{what}: schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(
            f"{what}: schema_version {version} is newer than this rustorch_tools understands "
            f"(<= {SCHEMA_VERSION}); upgrade rustorch_tools to read it"
        )
    return version


def migrate_run(obj: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """`obj` as a schema_version 1 run.json, and the version it was migrated from.

    Returns `(obj, None)` for a current document (not copied). Raises
    UnsupportedSchemaVersion for a newer or malformed version.
    """
    version = document_version(obj, "run.json")
    if version == SCHEMA_VERSION:
        return obj, None
    return _run_v0_to_v1(obj), version


def _run_v0_to_v1(old: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(old)
    state = str(old.get("state", "RUNNING")).upper()
    if state not in _V0_STATES:
        raise UnsupportedSchemaVersion(f"run.json (version 0): unknown state {old.get('state')!r}")
    start = old.get("start_time", 0.0)
    end = old.get("end_time")
    tags = old.get("tags") or {}
    if isinstance(tags, list):
        tags = {str(t): "" for t in tags}
    else:
        tags = {str(k): str(v) for k, v in tags.items()}
    error = old.get("error")
    if isinstance(error, str):
        error = {"type": "Error", "message": error}
    run_id = old.get("run_id")
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "name": old.get("name") or run_id,
        "status": _V0_STATES[state],
        "created_at": start,
        "started_at": start,
        "ended_at": end,
        "heartbeat_at": old.get("last_heartbeat", end if end is not None else start),
        "heartbeat_interval_s": DEFAULT_HEARTBEAT_INTERVAL_S,
        "config": {},
        "params": old.get("params") or {},
        "seed": old.get("seed"),
        "tags": tags,
        "parent": None,
        "environment": {},
        "error": error,
        "summary": {},
    }
