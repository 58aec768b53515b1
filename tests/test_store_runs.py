"""rustorch_tools.store.runs and .manifest."""

import json
import math
import threading

import pytest
from test_store_schema import good_run

from rustorch_tools.errors import (
    CorruptRunError,
    InvalidNameError,
    RunNotFoundError,
    SchemaValidationError,
    UnsupportedSchemaVersion,
)
from rustorch_tools.store import layout, manifest, runs


@pytest.fixture
def rd(tmp_path):
    d = tmp_path / "r1"
    d.mkdir()
    runs.write_run(d, good_run())
    return d


def test_write_read_roundtrip(rd):
    assert runs.read_run(rd) == good_run()
    assert json.loads((rd / layout.RUN_JSON).read_text()) == good_run()


def test_write_refuses_invalid_doc_and_keeps_old(rd):
    bad = good_run()
    bad["status"] = "weird"
    with pytest.raises(SchemaValidationError, match="status"):
        runs.write_run(rd, bad)
    assert runs.read_run(rd)["status"] == "running"


def test_read_errors(tmp_path, rd):
    with pytest.raises(RunNotFoundError):
        runs.read_run(tmp_path / "absent")
    (rd / layout.RUN_JSON).write_text("{not json")
    with pytest.raises(CorruptRunError, match="not valid JSON"):
        runs.read_run(rd)
    (rd / layout.RUN_JSON).write_text("[]")
    with pytest.raises(CorruptRunError, match="not an object"):
        runs.read_run(rd)
    (rd / layout.RUN_JSON).write_text(json.dumps({**good_run(), "schema_version": 7}))
    with pytest.raises(UnsupportedSchemaVersion):
        runs.read_run(rd)
    (rd / layout.RUN_JSON).write_text(json.dumps({**good_run(), "status": 3}))
    with pytest.raises(CorruptRunError, match="status"):
        runs.read_run(rd)
    assert runs.read_run(rd, validate=False)["status"] == 3


def test_read_migrates_in_memory_update_writes_current(rd):
    legacy = {"run_id": "r1", "state": "RUNNING", "start_time": 5.0, "params": {"a": 1}}
    (rd / layout.RUN_JSON).write_text(json.dumps(legacy))
    assert runs.read_run(rd)["status"] == "running"
    assert json.loads((rd / layout.RUN_JSON).read_text()) == legacy
    runs.update_run(rd, lambda d: d.update(status="finished", ended_at=6.0))
    on_disk = json.loads((rd / layout.RUN_JSON).read_text())
    assert on_disk["schema_version"] == 1 and on_disk["status"] == "finished"


def test_update_run_from_threads_loses_nothing(rd):
    def bump(tag):
        for i in range(20):
            runs.update_run(rd, lambda d, i=i: d["summary"].__setitem__(f"{tag}-{i}", i))

    threads = [threading.Thread(target=bump, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs.read_run(rd)["summary"]) == 80


def test_lock_is_reentrant(rd):
    with runs.run_lock(rd), runs.run_lock(rd):
        runs.update_run(rd, lambda d: d.update(seed=5))
    assert runs.read_run(rd)["seed"] == 5
    with pytest.raises(RunNotFoundError):
        with runs.run_lock(rd / "nope"):
            pass


def test_metrics_and_events(rd):
    runs.append_rows(rd / layout.METRICS, [{"step": 0, "time": 1.0, "loss": math.inf},
                                           {"step": 1, "time": 2.0, "loss": 0.5}])
    with open(rd / layout.METRICS, "ab") as fh:
        fh.write(b'{"step":2,"loss":1,"_crc":"00000000"}\n')
    rows = list(runs.iter_metrics(rd))
    assert [r["step"] for r in rows] == [0, 1] and rows[0]["loss"] == math.inf
    runs.append_event(rd, "created", {"by": "test"}, rank=0)
    with pytest.raises(SchemaValidationError):
        runs.append_event(rd, "exploded")
    events = list(runs.iter_events(rd))
    assert [e["event"] for e in events] == ["created"] and events[0]["detail"] == {"by": "test"}


def test_is_stale():
    doc = good_run()
    doc["heartbeat_at"] = 1000.0
    assert not runs.is_stale(doc, now=1059.0)  # min 60 s
    assert runs.is_stale(doc, now=1061.0)
    doc["heartbeat_interval_s"] = 30.0
    assert not runs.is_stale(doc, now=1089.0) and runs.is_stale(doc, now=1091.0)
    assert runs.effective_status(doc, now=1091.0) == "crashed"
    doc["status"] = "finished"
    assert not runs.is_stale(doc, now=1e12)


def test_manifest_add_verify_remove(rd):
    (rd / "artifacts").mkdir()
    (rd / "checkpoints").mkdir()
    (rd / "artifacts" / "a.txt").write_bytes(b"hello")
    (rd / "checkpoints" / "c.pt").write_bytes(b"x" * 10)
    (rd / "checkpoints" / "latest").write_text("c.pt")
    entry = manifest.add_file(rd, "artifacts/a.txt")
    assert entry["sha256"] == manifest.sha256_file(rd / "artifacts" / "a.txt") and entry["size"] == 5
    manifest.add_file(rd, "checkpoints/c.pt")
    assert manifest.verify(rd) == []
    (rd / "artifacts" / "a.txt").write_bytes(b"hellO")
    (rd / "checkpoints" / "c.pt").unlink()
    (rd / "artifacts" / "new.bin").write_bytes(b"")
    (rd / "checkpoints" / ".c.pt.tmp-1-abcd").write_bytes(b"")
    found = {(m.relpath, m.kind) for m in manifest.verify(rd)}
    assert found == {("artifacts/a.txt", "modified"), ("checkpoints/c.pt", "missing"),
                     ("artifacts/new.bin", "untracked"), ("checkpoints/.c.pt.tmp-1-abcd", "temp")}
    manifest.remove_files(rd, ["checkpoints/c.pt"])
    assert "checkpoints/c.pt" not in manifest.read_manifest(rd)["files"]


@pytest.mark.parametrize("rel", ["run.json", "artifacts/../run.json", "/etc/passwd", "artifacts"])
def test_manifest_refuses_bad_paths(rd, rel):
    with pytest.raises(InvalidNameError):
        manifest.add_file(rd, rel)


def test_manifest_newer_version_refused(rd):
    (rd / layout.MANIFEST).write_text(json.dumps({"schema_version": 9, "files": {}}))
    with pytest.raises(UnsupportedSchemaVersion):
        manifest.read_manifest(rd)
