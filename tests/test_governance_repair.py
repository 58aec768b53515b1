"""repair: every recoverable problem fixed, torn bytes kept, dry run, audit digests."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import time
from pathlib import Path

from click.testing import CliRunner
from support.governance_synth import make_run, metric_rows

from rustorch_tools.cli import cli
from rustorch_tools.governance.repair import repair_runs
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store.atomic import atomic_write_json
from rustorch_tools.store.jsonl import encode_row


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def codes(root: Path) -> set[str]:
    return {f.code for f in validate_runs(root, jobs=1).all_findings()}


def torn(d: Path, name: str = "metrics.jsonl") -> bytes:
    tail = encode_row({"step": 999, "time": 1.0, "loss": 0.5})[:23]
    with open(d / name, "ab") as fh:
        fh.write(tail)
    return tail


def test_cut_torn_tail_keeps_the_bytes(tmp_path):
    d = make_run(tmp_path, "r")
    original = (d / "metrics.jsonl").read_bytes()
    tail = torn(d)
    torn(d, "events.jsonl")
    assert "RT202" in codes(tmp_path)
    res = invoke("repair", str(tmp_path), "--json")
    assert res.exit_code == 0, res.output
    actions = json.loads(res.output)["actions"]
    assert {a["action"] for a in actions} == {"cut_torn", "regenerate_summary"}
    assert (d / "metrics.jsonl").read_bytes() == original
    (orphan,) = d.glob("metrics.jsonl.*.orphan")
    assert orphan.read_bytes() == tail  # no byte lost
    assert len(list(d.glob("events.jsonl.*.orphan"))) == 1
    assert codes(tmp_path) == set()
    cut = next(a for a in actions if a["file"] == "r/metrics.jsonl")
    assert cut["after_sha256"] == sha(d / "metrics.jsonl") != cut["before_sha256"]
    assert cut["detail"]["orphan"] == orphan.name and cut["detail"]["bytes"] == len(tail)
    events = (d / "events.jsonl").read_bytes().splitlines()
    assert b'"event":"repaired"' in events[-1]


def test_mark_crashed(tmp_path):
    d = make_run(tmp_path, "r", status="running")
    doc = json.loads((d / "run.json").read_text())
    beat = time.time() - 7200
    atomic_write_json(d / "run.json", {**doc, "heartbeat_at": beat})
    repair_runs(tmp_path)
    doc = json.loads((d / "run.json").read_text())
    assert doc["status"] == "crashed" and doc["ended_at"] == beat
    assert b'"event":"crashed"' in (d / "events.jsonl").read_bytes()
    assert codes(tmp_path) == set()


def test_migrate_on_disk(tmp_path):
    d = make_run(tmp_path, "old", checkpoint=None)
    legacy = {"run_id": "old", "state": "FINISHED", "start_time": 1.0, "end_time": 2.0,
              "params": {"lr": 0.1}, "tags": ["a"]}
    (d / "run.json").write_text(json.dumps(legacy))
    plan = repair_runs(tmp_path, dry_run=True)
    assert {a.action for a in plan.actions} == {"migrate", "regenerate_summary"}
    assert json.loads((d / "run.json").read_text()) == legacy  # dry run: untouched
    repair_runs(tmp_path)
    doc = json.loads((d / "run.json").read_text())
    assert doc["schema_version"] == 1 and doc["status"] == "finished"
    assert doc["params"] == {"lr": 0.1} and doc["tags"] == {"a": ""}
    assert b'"event":"migrated"' in (d / "events.jsonl").read_bytes()
    assert codes(tmp_path) == set()


def test_rebuild_missing_manifest_unverified(tmp_path):
    d = make_run(tmp_path, "r")
    (d / "manifest.json").unlink()
    (d / "artifacts").mkdir()
    (d / "artifacts" / "plot.png").write_bytes(b"png")
    assert "RT301" in codes(tmp_path)
    repair_runs(tmp_path)
    doc = json.loads((d / "manifest.json").read_text())
    assert set(doc["files"]) == {"checkpoints/ckpt-00000001.pt", "artifacts/plot.png"}
    assert all(e["verified"] is False for e in doc["files"].values())
    assert doc["files"]["artifacts/plot.png"]["sha256"] == hashlib.sha256(b"png").hexdigest()
    assert codes(tmp_path) == {"RT306"}  # a note: digests were not known before


def test_regenerate_summary(tmp_path):
    d = make_run(tmp_path, "r", rows=10)
    with open(d / "metrics.jsonl", "ab") as fh:
        fh.write(metric_rows(1, step0=10) + encode_row(
            {"step": 11, "time": 1.0, "loss": float("inf"), "extra": 3}))
    assert codes(tmp_path) == {"RT404", "RT205"}
    repair_runs(tmp_path)
    s = json.loads((d / "run.json").read_text())["summary"]
    assert s["step"] == 11 and s["metrics"]["loss"] == "inf" and s["metrics"]["extra"] == 3
    assert codes(tmp_path) == {"RT205"}


def test_dry_run_prints_plan_and_changes_nothing(tmp_path):
    d = make_run(tmp_path, "r")
    torn(d)
    before = {p.name: sha(p) for p in d.iterdir() if p.is_file()}
    res = invoke("repair", str(tmp_path), "--dry-run")
    assert res.exit_code == 0 and "plan   cut_torn" in res.output
    assert {p.name: sha(p) for p in d.iterdir() if p.is_file()} == before
    assert not (tmp_path / ".audit").exists()


def test_live_runs_are_not_repaired(tmp_path):
    d = make_run(tmp_path, "r", status="running")
    torn(d)
    before = sha(d / "metrics.jsonl")
    out = repair_runs(tmp_path)
    assert out.actions == [] and sha(d / "metrics.jsonl") == before


def test_unrecoverable_runs_are_left_alone(tmp_path):
    d = make_run(tmp_path, "r")
    (d / "checkpoints" / "ckpt-00000001.pt").write_bytes(b"tampered")
    out = repair_runs(tmp_path)
    assert out.actions == [] and codes(tmp_path) == {"RT303"}


def test_failed_repair_exits_1(tmp_path):
    d = make_run(tmp_path, "r", status="running")
    doc = json.loads((d / "run.json").read_text())
    # stale, but also a schema error: the rewrite is refused, the file is unchanged
    atomic_write_json(d / "run.json", {**doc, "heartbeat_at": 1.0, "seed": "x"})
    before = sha(d / "run.json")
    res = invoke("repair", str(tmp_path), "--json")
    out = json.loads(res.output)
    assert res.exit_code == 1 and out["actions"][0]["error"]
    assert sha(d / "run.json") == before


def test_audit_entry_holds_digests(tmp_path):
    d = make_run(tmp_path, "r")
    torn(d)
    before = sha(d / "metrics.jsonl")
    repair_runs(tmp_path)
    intent, entry = [json.loads(x) for x in
                     (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    assert intent["command"] == "repair-intent" and entry["command"] == "repair"
    assert intent["details"]["actions"][0]["before_sha256"] == before  # audited before
    cut = entry["details"]["actions"][0]
    assert cut["before_sha256"] == before and cut["after_sha256"] == sha(d / "metrics.jsonl")


def _repair_worker(root: str, barrier, q) -> None:
    barrier.wait()
    out = repair_runs(Path(root), jobs=1)
    q.put([(a.run_id, a.action) for a in out.actions])


def test_concurrent_repairs_do_each_fix_once(tmp_path):
    tails = {}
    for i in range(6):
        d = make_run(tmp_path, f"r{i}")
        tails[d.name] = torn(d)
    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_repair_worker, args=(str(tmp_path), barrier, q))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    cuts = sorted(r for res in results for r, a in res if a == "cut_torn")
    assert cuts == sorted(tails)  # each torn file cut exactly once
    for name, tail in tails.items():
        (orphan,) = (tmp_path / name).glob("metrics.jsonl.*.orphan")
        assert orphan.read_bytes() == tail
    assert codes(tmp_path) == set()
    assert invoke("audit", "verify", str(tmp_path)).exit_code == 0


def test_runs_with_links_are_never_written(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "events").write_bytes(b"outside")
    d = make_run(tmp_path, "r")
    (d / "events.jsonl").unlink()
    import os

    os.symlink(outside / "events", d / "events.jsonl")
    (d / "manifest.json").unlink()  # repairable, but not in a run with a link
    out = repair_runs(tmp_path)
    assert out.actions == []
    assert (outside / "events").read_bytes() == b"outside"
    assert not (d / "manifest.json").exists()


def _stale(d: Path) -> None:
    doc = json.loads((d / "run.json").read_text())
    atomic_write_json(d / "run.json", {**doc, "heartbeat_at": time.time() - 7200})


def test_torn_lines_in_the_middle_are_cut_and_audited(tmp_path):
    d = make_run(tmp_path, "r")
    lines = (d / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    torn_line = encode_row({"step": 4, "time": 1.0, "loss": 0.5})[:17] + b"\n"
    damaged = lines[9].replace(b'"loss":', b'"lost":')  # complete, fails its CRC: evidence
    data = b"".join(lines[:3] + [torn_line] + lines[3:9] + [damaged] + lines[10:] + [torn_line])
    (d / "metrics.jsonl").write_bytes(data)
    found = {(f.code, f.line) for f in validate_runs(tmp_path, jobs=1).all_findings()}
    assert {("RT209", 4), ("RT209", 22), ("RT201", 11)} <= found
    out = repair_runs(tmp_path)
    (act,) = [a for a in out.actions if a.action == "cut_torn_lines"]
    assert act.done and act.file == "r/metrics.jsonl"
    assert act.detail["lines"] == [4, 22] and act.detail["kept"] == len(lines)
    orphan = d / act.detail["orphan"]
    assert orphan.read_bytes() == torn_line * 2  # every byte kept, in order
    assert act.detail["orphan_sha256"] == sha(orphan)
    assert (d / "metrics.jsonl").read_bytes() == b"".join(lines[:9] + [damaged] + lines[10:])
    assert {f.code for f in validate_runs(tmp_path, jobs=1).all_findings()} == {"RT201"}
    *_, entry = [json.loads(x) for x in (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    cut = next(a for a in entry["details"]["actions"] if a["action"] == "cut_torn_lines")
    assert cut["before_sha256"] == hashlib.sha256(data).hexdigest()
    assert cut["after_sha256"] == sha(d / "metrics.jsonl")


def test_crashed_checkpoint_save_leftovers_are_set_aside_adopted_forgotten(tmp_path):
    from rustorch_tools.store import manifest

    d = make_run(tmp_path, "r", status="running")
    _stale(d)
    ck = d / "checkpoints"
    doc = json.loads((d / "manifest.json").read_text())
    # rotation removed an older checkpoint but died before forgetting it
    doc["files"]["checkpoints/ckpt-00000000.pt"] = {
        "sha256": "0" * 64, "size": 3, "added_at": time.time() - 500, "verified": True}
    atomic_write_json(d / "manifest.json", doc)
    (ck / "ckpt-00000002.pt").write_bytes(b"new weights")  # written, never recorded
    (ck / ".ckpt-00000003.pt.tmp-1-abcd").write_bytes(b"half")  # interrupted write
    (d / ".manifest.json.tmp-1-beef").write_bytes(b"{")
    found = codes(tmp_path)
    assert {"RT304", "RT305", "RT504", "RT401"} <= found
    out = repair_runs(tmp_path)
    assert out.failed == []
    by = {a.action: a for a in out.actions}
    assert {"set_aside_temp", "adopt_untracked", "forget_rotated", "mark_crashed"} <= set(by)
    assert manifest.verify(d) == []
    left = [p.name for p in [*ck.iterdir(), *d.iterdir()] if ".tmp-" in p.name]
    assert all(n.endswith(".orphan") for n in left) and len(left) == 2
    orphans = {o.name: o.read_bytes() for o in d.glob("*.orphan") if not o.name.startswith("run.json.")}
    assert len(list(d.glob("run.json.*.orphan"))) == 1  # mark_crashed kept the old run.json
    assert sorted(orphans.values()) == [b"half", b"{"]
    assert by["forget_rotated"].detail["forgotten"]["checkpoints/ckpt-00000000.pt"]["sha256"] == "0" * 64
    entry = manifest.read_manifest(d)["files"]["checkpoints/ckpt-00000002.pt"]
    assert entry["verified"] is False and entry["sha256"] == sha(ck / "ckpt-00000002.pt")
    assert codes(tmp_path) == {"RT306"}


def test_finished_run_untracked_and_missing_files_stay_evidence(tmp_path):
    d = make_run(tmp_path, "r")
    doc = json.loads((d / "manifest.json").read_text())
    doc["files"]["checkpoints/ckpt-00000000.pt"] = {
        "sha256": "0" * 64, "size": 3, "added_at": time.time() - 500, "verified": True}
    atomic_write_json(d / "manifest.json", doc)
    (d / "checkpoints" / "ckpt-00000002.pt").write_bytes(b"dropped in later")
    before = sha(d / "manifest.json")
    out = repair_runs(tmp_path)
    assert out.actions == [] and sha(d / "manifest.json") == before
    assert codes(tmp_path) == {"RT304", "RT305"}
