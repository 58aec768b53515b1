"""quarantine / release: atomic moves, live runs kept, round trips, concurrent commands."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

from click.testing import CliRunner
from support.governance_synth import make_run

from rustorch_tools.cli import cli
from rustorch_tools.governance.quarantine import quarantine_runs
from rustorch_tools.store.atomic import atomic_write_json


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every regular file under root (links by target text)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            out[rel] = ("link:" + os.readlink(p)) if p.is_symlink() else \
                hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def break_run(d: Path) -> None:
    with open(d / "metrics.jsonl", "ab") as fh:
        fh.write(b"garbage\n")


def test_quarantine_moves_only_runs_with_errors(tmp_path):
    make_run(tmp_path, "good")
    break_run(make_run(tmp_path, "bad"))
    before = tree_digest(tmp_path / "bad")
    res = invoke("quarantine", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "moved bad -> .quarantine/bad" in res.output
    assert (tmp_path / "good").is_dir() and not (tmp_path / "bad").exists()
    moved = tree_digest(tmp_path / ".quarantine" / "bad")
    record = json.loads((tmp_path / ".quarantine" / "bad" / "QUARANTINE.json").read_text())
    del moved["QUARANTINE.json"]
    assert moved == before  # moved, byte for byte, nothing else
    assert record["run_id"] == "bad" and record["findings"][0]["code"] == "RT201"
    assert record["remediation"] and record["user"] and record["host"]
    assert isinstance(record["quarantined_at"], float)
    log = [json.loads(x) for x in (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    # write-ahead: the move's intent is audited before the rename, the outcome after it
    assert [e["command"] for e in log] == ["quarantine-move", "quarantine"]
    assert log[0]["details"]["intent"]["run_id"] == "bad"
    assert log[1]["details"]["moved"][0]["run_id"] == "bad"


def test_dry_run_changes_nothing(tmp_path):
    break_run(make_run(tmp_path, "bad"))
    before = tree_digest(tmp_path)
    res = invoke("quarantine", str(tmp_path), "--dry-run", "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["dry_run"] and doc["moved"][0]["run_id"] == "bad"
    assert tree_digest(tmp_path) == before
    assert not (tmp_path / ".quarantine").exists() and not (tmp_path / ".audit").exists()


def test_live_run_is_never_quarantined(tmp_path):
    d = make_run(tmp_path, "live", status="running")
    break_run(d)
    res = invoke("quarantine", str(tmp_path), "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["moved"] == []
    assert doc["skipped"][0]["run_id"] == "live" and "live" in doc["skipped"][0]["reason"]
    assert d.is_dir()


def test_release_round_trip(tmp_path):
    d = make_run(tmp_path, "r")
    doc = json.loads((d / "run.json").read_text())
    atomic_write_json(d / "run.json", {**doc, "parent": {"run_id": "gone", "relation": "fork"}})
    original = tree_digest(d)
    quarantine_runs(tmp_path)
    assert not d.exists()
    # still broken: release refuses and the run stays put
    res = invoke("release", "r", "--runs-dir", str(tmp_path))
    assert res.exit_code == 1 and "RT501" in res.output
    assert (tmp_path / ".quarantine" / "r").is_dir()
    # fix it (restore the parent), then release
    make_run(tmp_path, "gone")
    res = invoke("release", "r", "--runs-dir", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert d.is_dir() and not (tmp_path / ".quarantine" / "r").exists()
    after = tree_digest(d)
    assert after.pop("events.jsonl") != original.pop("events.jsonl")  # + "released" event
    assert after == original
    events = (d / "events.jsonl").read_bytes().splitlines()
    assert b'"event":"released"' in events[-1]
    kept = list((tmp_path / ".audit" / "released").iterdir())
    assert len(kept) == 1 and json.loads(kept[0].read_text())["run_id"] == "r"
    cmds = [json.loads(x)["command"]
            for x in (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    assert cmds == ["quarantine-move", "quarantine", "release", "release-move", "release"]
    assert invoke("validate", str(tmp_path)).exit_code == 0


def test_release_usage_errors(tmp_path):
    make_run(tmp_path, "r")
    assert invoke("release", "nope", "--runs-dir", str(tmp_path)).exit_code == 2
    assert invoke("release", "../etc", "--runs-dir", str(tmp_path)).exit_code == 2
    break_run(tmp_path / "r")
    quarantine_runs(tmp_path)
    make_run(tmp_path, "r")  # a new run took the id meanwhile
    res = invoke("release", "r", "--runs-dir", str(tmp_path))
    assert res.exit_code == 2 and "already exists" in res.output


def test_same_id_twice_is_not_overwritten(tmp_path):
    break_run(make_run(tmp_path, "r"))
    quarantine_runs(tmp_path)
    break_run(make_run(tmp_path, "r"))
    out = quarantine_runs(tmp_path)
    assert out.moved == [] and "already exists" in out.skipped[0]["reason"]
    assert (tmp_path / "r").is_dir() and (tmp_path / ".quarantine" / "r").is_dir()


def _quarantine_worker(root: str, barrier, q) -> None:
    barrier.wait()
    out = quarantine_runs(Path(root), jobs=1)
    q.put(sorted(m.run_id for m in out.moved))


def test_concurrent_quarantines_neither_lose_nor_duplicate(tmp_path):
    names = [f"r{i:02d}" for i in range(12)]
    digests = {}
    for i, n in enumerate(names):
        d = make_run(tmp_path, n, rows=40)
        if i % 2:
            break_run(d)
        digests[n] = tree_digest(d)
    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_quarantine_worker, args=(str(tmp_path), barrier, q))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    bad = sorted(names[1::2])
    assert sorted(results[0] + results[1]) == bad  # each moved exactly once, in total
    for n in names:
        live, quarantined = tmp_path / n, tmp_path / ".quarantine" / n
        assert live.exists() != quarantined.exists()  # never both, never neither
        got = tree_digest(live if live.exists() else quarantined)
        got.pop("QUARANTINE.json", None)
        got.pop(".lock", None)
        digests[n].pop(".lock", None)
        assert got == digests[n]
    cmds = [json.loads(x)["command"]
            for x in (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    assert [c for c in cmds if c != "quarantine-move"] == ["quarantine", "quarantine"]
    assert cmds.count("quarantine-move") == len(bad)
    assert invoke("audit", "verify", str(tmp_path)).exit_code == 0


def test_heartbeat_refreshed_after_validation_blocks_the_move(tmp_path, monkeypatch):
    """A run that looked crashed during validation but beats again before the move stays."""
    from rustorch_tools.governance import quarantine as qmod

    d = make_run(tmp_path, "r", status="running")
    doc = json.loads((d / "run.json").read_text())
    atomic_write_json(d / "run.json", {**doc, "heartbeat_at": time.time() - 3600})
    real = qmod.validate_runs

    def validate_then_beat(*a, **kw):
        report = real(*a, **kw)
        atomic_write_json(d / "run.json", {**doc, "heartbeat_at": time.time()})
        return report

    monkeypatch.setattr(qmod, "validate_runs", validate_then_beat)
    out = quarantine_runs(tmp_path)
    assert out.moved == [] and d.is_dir()


def test_reserved_folder_that_is_a_link_is_refused(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    break_run(make_run(tmp_path, "bad"))
    os.symlink(outside, tmp_path / ".quarantine")
    res = invoke("quarantine", str(tmp_path))
    assert res.exit_code == 2 and "link" in res.output
    assert (tmp_path / "bad").is_dir() and list(outside.iterdir()) == []
    (tmp_path / ".quarantine").unlink()
    os.symlink(outside, tmp_path / ".audit")
    res = invoke("quarantine", str(tmp_path))
    assert res.exit_code == 2 and list(outside.iterdir()) == []
    assert (tmp_path / "bad").is_dir()
    assert invoke("repair", str(tmp_path)).exit_code == 2


def test_run_moved_during_validation_is_not_reported(tmp_path, monkeypatch):
    from rustorch_tools.governance import run_check
    from rustorch_tools.governance.validate import validate_runs

    make_run(tmp_path, "a")
    make_run(tmp_path, "b")
    real = run_check._RunChecker._check_status

    def move_midway(self, doc):
        real(self, doc)
        if self.dir.name == "b":  # another process quarantines b right now
            (tmp_path / ".quarantine").mkdir(exist_ok=True)
            os.rename(self.dir, tmp_path / ".quarantine" / "b")

    monkeypatch.setattr(run_check._RunChecker, "_check_status", move_midway)
    report = validate_runs(tmp_path, jobs=1)
    assert [r.folder for r in report.runs] == ["a"]
    assert list(report.all_findings()) == []
