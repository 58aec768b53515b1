"""rustorch_tools.store.schema and the JSON Schema files."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from rustorch_tools.errors import UnsupportedSchemaVersion
from rustorch_tools.store import jsonl, schema

SCHEMAS = Path(__file__).resolve().parent.parent / "rustorch_tools" / "schemas"


def good_run() -> dict:
    return {
        "schema_version": 1, "run_id": "r1", "name": "mnist", "status": "running",
        "created_at": 1.0, "started_at": 1.0, "ended_at": None, "heartbeat_at": 2.0,
        "heartbeat_interval_s": 10.0, "config": {"lr": 0.1}, "params": {}, "seed": 1,
        "tags": {"team": "a"}, "parent": None,
        "environment": {"python": "3.11.7", "torch": "2.14.1", "rustorch": "0.1.0",
                        "git_commit": None, "git_dirty": None, "hostname": "h",
                        "accelerator": None, "pid": 1},
        "error": None, "summary": {},
    }


def test_every_schema_file_is_a_valid_2020_12_schema():
    names = sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert names == ["event.v1.json", "manifest.v1.json", "metric_row.v1.json", "run.v1.json"]
    for name in schema.SCHEMA_NAMES:
        doc = schema.load_schema(name)
        assert doc["$schema"].endswith("2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(doc)
        assert doc == json.loads((SCHEMAS / f"{name}.v1.json").read_text())


def test_unknown_schema_name():
    with pytest.raises(ValueError, match="unknown schema"):
        schema.load_schema("nope")


def test_valid_run_passes_and_errors_name_the_field():
    assert schema.validate_document("run", good_run()) == []
    bad = good_run()
    bad["status"] = "paused"
    del bad["seed"]
    bad["parent"] = {"run_id": "../x", "relation": "resume"}
    errors = schema.validate_document("run", bad)
    assert any(e.startswith("status:") for e in errors)
    assert any("'seed' is a required property" in e for e in errors)
    assert any(e.startswith("parent") for e in errors)


def test_metric_row_schema():
    ok = jsonl.decode_line(jsonl.encode_row({"step": 0, "time": 1.0, "loss": float("nan"), "acc": 1}))
    assert schema.validate_document("metric_row", ok) == []
    for bad in (
        {"time": 1.0, "x": 1},
        {"step": -1, "time": 1.0},
        {"step": 0, "time": 1.0, "x": "hello"},
        {"step": 0, "time": 1.0, "_secret": 1},
        {"step": "nan", "time": 1.0},
        {"step": 0, "time": 1.0, "": 1},
        {"step": 0, "time": 1.0, "x" * 201: 1},
    ):
        assert schema.validate_document("metric_row", bad), bad


def test_event_and_manifest_schema():
    assert schema.validate_document("event", {"time": 1.0, "event": "created", "detail": {}}) == []
    assert schema.validate_document("event", {"time": 1.0, "event": "exploded"})
    entry = {"sha256": "0" * 64, "size": 1, "added_at": 1.0, "verified": True}
    assert schema.validate_document("manifest", {"schema_version": 1, "files": {"artifacts/a/b.txt": entry}}) == []
    for key in ("other/x", "artifacts/../run.json", "artifacts", "checkpoints/./x"):
        assert schema.validate_document("manifest", {"schema_version": 1, "files": {key: entry}}), key


def test_migrate_current_is_identity():
    doc = good_run()
    assert schema.migrate_run(doc) == (doc, None)


def test_migrate_v0():
    legacy = {"run_id": "old-1", "state": "KILLED", "start_time": 100.0, "end_time": None,
              "last_heartbeat": 150.0, "params": {"lr": 0.1}, "tags": ["baseline"],
              "error": "boom"}
    before = copy.deepcopy(legacy)
    doc, version = schema.migrate_run(legacy)
    assert version == 0
    assert legacy == before  # input untouched
    assert doc["schema_version"] == 1 and doc["status"] == "crashed" and doc["name"] == "old-1"
    assert doc["started_at"] == 100.0 and doc["heartbeat_at"] == 150.0
    assert doc["params"] == {"lr": 0.1} and doc["config"] == {} and doc["tags"] == {"baseline": ""}
    assert doc["error"] == {"type": "Error", "message": "boom"}
    assert schema.validate_document("run", doc) == []
    finished, _ = schema.migrate_run({"schema_version": 0, "run_id": "x", "state": "FINISHED",
                                      "start_time": 1.0, "end_time": 2.0, "params": {}})
    assert finished["status"] == "finished" and finished["ended_at"] == 2.0
    assert schema.validate_document("run", finished) == []


@pytest.mark.parametrize("version", [2, 99, -1, "1", True, 1.5])
def test_newer_or_bad_version_refused(version):
    doc = good_run()
    doc["schema_version"] = version
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version"):
        schema.migrate_run(doc)


def test_newer_version_message_says_upgrade():
    with pytest.raises(UnsupportedSchemaVersion, match="newer than this rustorch_tools"):
        schema.migrate_run({**good_run(), "schema_version": 2})
