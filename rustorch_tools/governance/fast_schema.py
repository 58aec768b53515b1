"""Conservative fast pre-checks for `run.v1.json` and `manifest.v1.json`.

jsonschema takes ~1 ms per run.json, which alone would cost 10 s over 10,000 runs. These
checks answer True only when the document is certainly valid under the schema files (stricter
than the schema wherever that is simpler: integers must be `int`, numbers finite, patterns
matched in full); anything else goes to jsonschema, which gives the authoritative messages.
tests/test_governance_validate.py checks on mutated documents that True always agrees with
jsonschema, so a drift between these lines and the schema files fails the tests.
"""

from __future__ import annotations

import math
import re
from typing import Any

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_RUN_KEYS = frozenset({"schema_version", "run_id", "name", "status", "created_at", "started_at",
                       "ended_at", "heartbeat_at", "heartbeat_interval_s", "config", "params",
                       "seed", "tags", "parent", "environment", "error", "summary"})
_STATUS = frozenset({"running", "finished", "failed", "crashed"})
_RELATIONS = frozenset({"resume", "fork", "finetune"})
_ENV_STR = ("python", "hostname")
_ENV_STR_OR_NULL = ("torch", "rustorch", "git_commit", "accelerator")
_SHA = re.compile(r"[0-9a-f]{64}")
_MANIFEST_PATH = re.compile(r"(checkpoints|artifacts)(/(?!\.\.?(/|$))[^/]+)+")


def _num(v: Any) -> bool:
    return type(v) is int or (type(v) is float and math.isfinite(v))


def _int(v: Any) -> bool:
    return type(v) is int


def _str_or_none(v: Any) -> bool:
    return v is None or type(v) is str


def _one_of(v: Any, names: frozenset[str]) -> bool:
    return type(v) is str and v in names


def _run_id(v: Any) -> bool:
    return type(v) is str and _RUN_ID.fullmatch(v) is not None


def run_doc_ok(doc: Any) -> bool:
    if type(doc) is not dict or doc.keys() != _RUN_KEYS:
        return False
    if not (_int(doc["schema_version"]) and doc["schema_version"] == 1 and _run_id(doc["run_id"])):
        return False
    name = doc["name"]
    if type(name) is not str or not 1 <= len(name) <= 128 or not _one_of(doc["status"], _STATUS):
        return False
    for key in ("created_at", "started_at", "heartbeat_at"):
        if not (_num(doc[key]) and doc[key] >= 0):
            return False
    ended = doc["ended_at"]
    if ended is not None and not (_num(ended) and ended >= 0):
        return False
    hb = doc["heartbeat_interval_s"]
    if not (_num(hb) and hb > 0):
        return False
    if not all(type(doc[k]) is dict for k in ("config", "params", "summary", "tags")):
        return False
    if not (doc["seed"] is None or _int(doc["seed"])):
        return False
    if not all(type(v) is str for v in doc["tags"].values()):
        return False
    parent = doc["parent"]
    if parent is not None:
        if type(parent) is not dict or not {"run_id", "relation"} <= parent.keys() \
                or not parent.keys() <= {"run_id", "relation", "checkpoint"}:
            return False
        if not _run_id(parent["run_id"]) or not _one_of(parent["relation"], _RELATIONS):
            return False
        if not _str_or_none(parent.get("checkpoint")):
            return False
    env = doc["environment"]
    if type(env) is not dict:
        return False
    if not all(type(env[k]) is str for k in _ENV_STR if k in env):
        return False
    if not all(_str_or_none(env[k]) for k in _ENV_STR_OR_NULL if k in env):
        return False
    if "git_dirty" in env and env["git_dirty"] not in (None, True, False):
        return False
    if "pid" in env and not _int(env["pid"]):
        return False
    err = doc["error"]
    if err is not None:
        if type(err) is not dict or type(err.get("type")) is not str \
                or type(err.get("message")) is not str:
            return False
        if "traceback" in err and type(err["traceback"]) is not str:
            return False
    return True


def manifest_ok(doc: Any) -> bool:
    if type(doc) is not dict or doc.keys() != {"schema_version", "files"}:
        return False
    if not (_int(doc["schema_version"]) and doc["schema_version"] == 1):
        return False
    files = doc["files"]
    if type(files) is not dict:
        return False
    for path, e in files.items():
        if _MANIFEST_PATH.fullmatch(path) is None or type(e) is not dict:
            return False
        if e.keys() != {"sha256", "size", "added_at", "verified"}:
            return False
        if type(e["sha256"]) is not str or _SHA.fullmatch(e["sha256"]) is None:
            return False
        if not (_int(e["size"]) and e["size"] >= 0 and _num(e["added_at"])
                and e["added_at"] >= 0 and type(e["verified"]) is bool):
            return False
    return True
