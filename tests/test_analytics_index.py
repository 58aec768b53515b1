"""The delta index: incremental refresh, deltas against baselines, damage and concurrency."""

import multiprocessing
import sqlite3
import subprocess
import sys
import time

import pytest
from support import analytics_synth as synthetic

from rustorch_tools.analytics import index as index_mod
from rustorch_tools.analytics.index import RunIndex, open_index
from rustorch_tools.store import layout, runs


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=50)
    return r


def _append(run_dir, rows):
    runs.append_rows(run_dir / layout.METRICS, rows)


def test_first_refresh_reads_everything_then_nothing(root):
    with RunIndex(root) as ix:
        first = ix.refresh()
        assert (first.scanned, first.updated, first.removed, first.unreadable) == (6, 6, 0, 0)
        again = ix.refresh()
        assert (again.scanned, again.updated) == (6, 0)
        assert [r.run_id for r in ix.summaries()] == ["base", "fork", "resume", "finetune",
                                                       "rerun", "failed"]
    assert (root / ".index" / index_mod.DB_NAME).exists()


def test_appended_rows_refresh_only_that_run(root):
    with open_index(root) as ix:
        before = ix.summaries(["fork"])[0].metrics["loss"]
        _append(root / "fork", [{"step": 50, "time": 1.0, "loss": 0.001}])
        stats = ix.refresh()
        assert stats.updated == 1
        after = ix.summaries(["fork"])[0].metrics["loss"]
        assert after.count == before.count + 1 and after.final == 0.001 and after.final_step == 50


def test_deltas_against_parent_and_recomputed_when_baseline_changes(root):
    with open_index(root) as ix:
        d = {(x["run_id"], x["metric"]): x for x in ix.deltas()}
        base = ix.summaries(["base"])[0].metrics["val_acc"].final
        fork = ix.summaries(["fork"])[0].metrics["val_acc"].final
        assert d[("fork", "val_acc")]["baseline_id"] == "base"
        assert d[("fork", "val_acc")]["final_abs"] == pytest.approx(fork - base)
        assert d[("fork", "val_acc")]["final_rel"] == pytest.approx((fork - base) / base)
        assert d[("resume", "val_acc")]["baseline_id"] == "fork"
        assert not any(x["run_id"] in ("base", "rerun") for x in ix.deltas())
        # The baseline changes: its children's deltas follow.
        _append(root / "base", [{"step": 99, "time": 1.0, "val_acc": 0.5}])
        ix.refresh()
        d = {(x["run_id"], x["metric"]): x for x in ix.deltas()}
        assert d[("fork", "val_acc")]["final_abs"] == pytest.approx(fork - 0.5)
        assert d[("finetune", "val_acc")]["final_abs"] == pytest.approx(
            ix.summaries(["finetune"])[0].metrics["val_acc"].final - 0.5)


def test_baseline_tag_overrides_parent(root):
    with open_index(root) as ix:
        runs.update_run(root / "rerun", lambda doc: doc["tags"].update(baseline="finetune"))
        assert ix.refresh().updated == 1
        d = [x for x in ix.deltas() if x["run_id"] == "rerun"]
        assert d and {x["baseline_id"] for x in d} == {"finetune"}


def test_removed_run_disappears_with_its_deltas(root):
    import shutil

    with open_index(root) as ix:
        shutil.rmtree(root / "fork")
        stats = ix.refresh()
        assert stats.removed == 1
        assert "fork" not in ix.run_ids()
        assert not [x for x in ix.deltas() if "fork" in (x["run_id"], x["baseline_id"])]


def test_broken_run_is_listed_then_recovers(root):
    good = (root / "base" / layout.RUN_JSON).read_bytes()
    (root / "base" / layout.RUN_JSON).write_bytes(b"{not json")
    with open_index(root) as ix:
        assert [b.run_id for b in ix.broken()] == ["base"]
        assert "not valid JSON" in ix.broken()[0].error
        assert "base" not in ix.run_ids()
        assert not [x for x in ix.deltas() if x["baseline_id"] == "base"]
        (root / "base" / layout.RUN_JSON).write_bytes(good)
        ix.refresh()
        assert ix.broken() == [] and "base" in ix.run_ids()
        assert [x for x in ix.deltas() if x["baseline_id"] == "base"]


def test_newer_schema_version_is_unreadable_not_fatal(root):
    runs.update_run(root / "rerun", lambda doc: None)
    raw = (root / "rerun" / layout.RUN_JSON).read_text().replace('"schema_version": 1', '"schema_version": 9')
    (root / "rerun" / layout.RUN_JSON).write_text(raw)
    with open_index(root) as ix:
        assert [b.run_id for b in ix.broken()] == ["rerun"]
        assert "newer" in ix.broken()[0].error


def test_corrupt_lines_and_torn_tail_are_counted(root):
    path = root / "base" / layout.METRICS
    with open(path, "ab") as fh:
        fh.write(b'{"step":60,"loss":1,"_crc":"00000000"}\n')
        fh.write(b"\x00\xffgarbage\n")
        fh.write(b'{"step":61,"lo')
    with open_index(root) as ix:
        s = ix.summaries(["base"])[0]
        assert s.corrupt_lines == 2 and s.incomplete_tail
        assert any("corrupt" in p for p in s.problems) and any("torn" in p for p in s.problems)
        assert s.metrics["loss"].final_step == 49


def test_live_run_tail_is_not_torn(tmp_path):
    now = time.time()
    doc = synthetic.run_doc("live", status="running", started_at=now, heartbeat_at=now)
    d = synthetic.write_run(tmp_path, doc, synthetic.training_rows(10))
    with open(d / layout.METRICS, "ab") as fh:
        fh.write(b'{"step":10,"lo')
    with open_index(tmp_path) as ix:
        s = ix.summaries(["live"])[0]
        assert s.status == "running" and s.incomplete_tail and s.problems == []


def test_stale_running_run_shows_crashed_without_file_change(tmp_path):
    doc = synthetic.run_doc("old", status="running", started_at=1000.0, heartbeat_at=1000.0)
    synthetic.write_run(tmp_path, doc, synthetic.training_rows(5))
    with open_index(tmp_path) as ix:
        assert ix.summaries()[0].status == "crashed"


def test_damaged_database_is_set_aside_and_rebuilt(root, capsys):
    open_index(root).close()
    db = root / ".index" / index_mod.DB_NAME
    for suffix in ("-wal", "-shm"):
        (root / ".index" / (index_mod.DB_NAME + suffix)).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    with open_index(root) as ix:
        assert len(ix.summaries()) == 6
    assert "rebuilding" in capsys.readouterr().err
    assert list((root / ".index").glob(index_mod.DB_NAME + ".broken-*"))


def test_old_index_version_is_rebuilt(root):
    open_index(root).close()
    conn = sqlite3.connect(root / ".index" / index_mod.DB_NAME)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with RunIndex(root) as ix:
        assert ix.refresh().updated == 6


def test_rebuild_rereads_all(root):
    with open_index(root) as ix:
        ix.rebuild()
        assert ix.refresh().updated == 6


def test_unwritable_index_dir_falls_back_to_memory(root, capsys):
    (root / ".index").write_text("a file where the folder should be")
    with open_index(root) as ix:
        assert ix.in_memory and len(ix.summaries()) == 6
    assert "in-memory" in capsys.readouterr().err


def test_missing_runs_dir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        RunIndex(tmp_path / "nope")


def _refresh_and_summarize(root, queue):
    with open_index(root) as ix:
        queue.put(sorted((r.run_id, r.rows, r.metrics["loss"].final) for r in ix.summaries()))


def test_two_processes_refreshing_at_once_agree(root):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_refresh_and_summarize, args=(root, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1] and len(results[0]) == 6


WRITER = """
import sys, time
from pathlib import Path
from rustorch_tools.store import layout, runs
d = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    runs.append_rows(d / layout.METRICS, [{"step": 1000 + i, "time": time.time(), "loss": 1.0 / (i + 1)}])
"""


def test_index_refreshes_while_a_run_is_being_written(root):
    n = 400
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root / "base"), str(n)],
                              env=_env())
    with RunIndex(root) as ix:
        counts = []
        while writer.poll() is None:
            ix.refresh()
            s = ix.summaries(["base"])[0]
            assert s.corrupt_lines == 0
            counts.append(s.metrics["loss"].count)
        assert writer.wait() == 0
        ix.refresh()
        final = ix.summaries(["base"])[0]
        assert final.metrics["loss"].count == 50 + n
        assert final.metrics["loss"].final == pytest.approx(1.0 / n)
        assert counts == sorted(counts)


def _env():
    import os
    from pathlib import Path

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_parallel_refresh_matches_serial(root, tmp_path):
    with RunIndex(root, jobs=1) as serial:
        serial.refresh()
        want = [r.to_json() for r in serial.summaries()]
    import shutil

    shutil.rmtree(root / ".index")
    (root / "zz-broken").mkdir()
    (root / "zz-broken" / layout.RUN_JSON).write_text("nope")
    with RunIndex(root, jobs=2, parallel_min=1) as par:
        stats = par.refresh()
        assert stats.updated == 7 and stats.unreadable == 1
        assert [r.to_json() for r in par.summaries()] == want
        assert [b.run_id for b in par.broken()] == ["zz-broken"]


def test_jobs_from_environment(monkeypatch):
    monkeypatch.setenv("RUSTORCH_ANALYTICS_JOBS", "3")
    assert index_mod.default_jobs() == 3
    monkeypatch.setenv("RUSTORCH_ANALYTICS_JOBS", "many")
    assert index_mod.default_jobs() == 1


def test_legacy_v0_run_json_is_migrated_in_memory(tmp_path):
    """A version-0 run.json (docs: `state`, `start_time`, `params` only) is read, not refused."""
    import json

    d = tmp_path / "old-run"
    d.mkdir()
    (d / layout.RUN_JSON).write_text(json.dumps({
        "run_id": "old-run", "state": "FINISHED", "start_time": 1000.0, "end_time": 1600.0,
        "params": {"lr": 0.1}, "tags": ["legacy"]}))
    runs.append_rows(d / layout.METRICS, synthetic.training_rows(10))
    before = (d / layout.RUN_JSON).read_bytes()
    with open_index(tmp_path) as ix:
        s = ix.summaries()[0]
        assert (s.status, s.started_at, s.params, s.migrated_from) == ("finished", 1000.0,
                                                                      {"lr": 0.1}, 0)
        assert any("migrated" in p for p in s.problems)
        assert s.metrics["loss"].count == 10
    assert (d / layout.RUN_JSON).read_bytes() == before


def test_index_command(root):
    import json

    from click.testing import CliRunner

    from rustorch_tools.cli import cli

    runner = CliRunner()
    first = json.loads(runner.invoke(cli, ["index", str(root), "--json"]).stdout)
    assert (first["scanned"], first["updated"], first["broken"]) == (6, 6, [])
    again = runner.invoke(cli, ["index", str(root)])
    assert again.exit_code == 0 and "6 run(s), 0 re-read" in again.stdout
    rebuilt = json.loads(runner.invoke(cli, ["index", str(root), "--rebuild", "--jobs", "1",
                                             "--json"]).stdout)
    assert rebuilt["updated"] == 6
    assert runner.invoke(cli, ["index", str(root / "nope")]).exit_code == 2
    doc = json.loads(runner.invoke(cli, ["index", str(root), "--deltas", "--json"]).stdout)
    assert {(d["run_id"], d["baseline_id"]) for d in doc["deltas"]} == {
        ("fork", "base"), ("resume", "fork"), ("finetune", "base")}
    text = runner.invoke(cli, ["index", str(root), "--deltas"]).stdout
    assert "Δ% final" in text and text.count(" val_acc ") == 3


def test_synthetic_runs_and_the_index_pass_validate(root):
    """The fixtures are real runs (governance finds nothing) and .index/ is no finding."""
    from click.testing import CliRunner

    from rustorch_tools.cli import cli

    open_index(root).close()
    res = CliRunner().invoke(cli, ["validate", str(root)])
    assert res.exit_code == 0, res.output
    assert "0 errors, 0 warnings" in res.output


def test_only_damage_sets_the_database_aside():
    assert index_mod._is_damage(sqlite3.DatabaseError("file is not a database"))
    assert index_mod._is_damage(sqlite3.OperationalError("no such table: runs"))
    assert not index_mod._is_damage(sqlite3.OperationalError("database is locked"))
    assert not index_mod._is_damage(sqlite3.OperationalError("attempt to write a readonly database"))
