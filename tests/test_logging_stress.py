"""Several processes logging into one run; a writer killed with SIGKILL mid-run."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import rustorch_tools
from rustorch_tools.governance.repair import repair_runs
from rustorch_tools.store import jsonl, layout, runs, schema

REPO = Path(__file__).resolve().parent.parent
ROWS = 1500  # per process here; benchmarks/bench_logging.py runs the full 8 x 10,000

WRITER = textwrap.dedent("""
    import sys, time
    import rustorch_tools
    root, run_id, rows, flush_every = sys.argv[1], sys.argv[2], int(sys.argv[4]), int(sys.argv[5])
    rank = None if sys.argv[3] == "None" else int(sys.argv[3])
    run = rustorch_tools.start_run(root, run_id=run_id, rank=rank, flush_every=flush_every)
    while rank is not None and len(run.read()["ranks"]) < 8:  # like DDP's rendezvous: all ranks join first
        time.sleep(0.01)
    pad = "p" * ((rank or 0) * 37 % 190)
    for step in range(rows):
        run.log_metrics({"loss": step * 0.5 + (rank or 0), "pad_" + pad: float(step)}, step=step)
    run.finish()
""")


def spawn(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", WRITER, *map(str, args)], env=env)


def test_eight_processes_one_run_lose_and_interleave_nothing(tmp_path):
    run_id = "ddp-run"
    procs = [spawn(tmp_path, run_id, rank, ROWS, random.choice([1, 7, 64, 500])) for rank in range(8)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    run_dir = tmp_path / run_id
    seen: dict[int, list[int]] = {r: [] for r in range(8)}
    for result in jsonl.scan(run_dir / layout.METRICS):
        assert result.error is None, result
        row = result.row
        if result.lineno % 50 == 0:  # jsonschema is slow; the writer path is the same for all
            assert schema.validate_document("metric_row", row) == []
        assert row["loss"] == row["step"] * 0.5 + row["rank"]
        seen[row["rank"]].append(row["step"])
    for rank, steps in seen.items():
        assert steps == list(range(ROWS)), rank  # every row, in order per rank
    doc = runs.read_run(run_dir)
    assert doc["status"] == "finished" and doc["ranks"] == {str(r): "finished" for r in range(8)}
    events = [e["event"] for e in runs.iter_events(run_dir)]
    assert events.count("created") == 1 and events.count("finished") == 1


VICTIM = textwrap.dedent("""
    import sys
    import rustorch_tools
    run = rustorch_tools.start_run(sys.argv[1], run_id=sys.argv[2], flush_every=1)
    big = {f"m{i:03d}": i * 0.001 for i in range(300)}
    step = 0
    print("ready", flush=True)
    while True:
        run.log_metrics(big, step=step)
        step += 1
""")


def test_sigkill_leaves_other_runs_untouched_and_own_run_repairable(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, tmp_path, "victim"], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "ready"
    others = [spawn(tmp_path, f"other-{i}", None, ROWS, 16) for i in range(2)]
    time.sleep(random.uniform(0.3, 0.8))
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    for p in others:
        assert p.wait(timeout=300) == 0
    for i in range(2):
        d = tmp_path / f"other-{i}"
        assert [r.error for r in jsonl.scan(d / layout.METRICS)] == [None] * ROWS
        assert runs.read_run(d)["status"] == "finished"

    d = tmp_path / "victim"
    results = list(jsonl.scan(d / layout.METRICS))
    assert results, "the victim wrote nothing before being killed"
    # Whole-line appends: only the very last line may be torn by the kill.
    assert all(r.error is None for r in results[:-1])
    steps = [r.row["step"] for r in results if r.row is not None]
    assert steps == list(range(len(steps)))
    doc = runs.read_run(d)
    assert doc["status"] == "running"
    assert runs.is_stale(doc, now=time.time() + 3600)

    out = repair_runs(tmp_path, now=time.time() + 3600)
    assert out.failed == []
    assert "mark_crashed" in {a.action for a in out.actions if a.run_id == "victim"}
    doc = runs.read_run(d)
    assert doc["status"] == "crashed" and doc["ended_at"] == doc["heartbeat_at"]
    assert all(r.error is None for r in jsonl.scan(d / layout.METRICS))
    assert [r["step"] for r in runs.iter_metrics(d)] == steps
    # The repaired run can be resumed and logged into again.
    with rustorch_tools.start_run(tmp_path, run_id="victim") as run:
        run.log_metrics({"after": 1.0}, step=len(steps))
    assert all(r.error is None for r in jsonl.scan(d / layout.METRICS))
    assert [e["event"] for e in runs.iter_events(d)][-4:] == ["crashed", "repaired", "resumed", "finished"]


def test_append_after_torn_tail_and_repair_keeps_orphan_bytes(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="t") as run:
        run.log_metrics({"a": 1}, step=0)
    path = run.dir / layout.METRICS
    with open(path, "ab") as fh:
        fh.write(b'{"step":1,"time":1.0,"a":')  # a writer died here
    with rustorch_tools.start_run(tmp_path, run_id=run.run_id) as again:
        again.log_metrics({"a": 3}, step=2)
    with open(path, "ab") as fh:  # and a complete line damaged later: evidence, kept
        fh.write(jsonl.encode_row({"step": 3, "time": 2.0, "a": 4}).replace(b'"a":4', b'"a":5'))
    results = list(jsonl.scan(path))
    assert [r.error is None for r in results] == [True, False, True, False]
    out = repair_runs(tmp_path)
    [act] = out.actions
    assert (act.action, act.file, act.done) == ("cut_torn_lines", f"{run.run_id}/{layout.METRICS}", True)
    orphan = act.detail["orphan"]
    assert {k: act.detail[k] for k in ("kept", "lines")} == {"kept": 3, "lines": [2]}
    assert orphan.startswith("metrics.jsonl.") and orphan.endswith(".orphan")
    assert (run.dir / orphan).read_bytes() == b'{"step":1,"time":1.0,"a":\n'
    assert [r.error is None for r in jsonl.scan(path)] == [True, True, False]
    assert [r["a"] for r in runs.iter_metrics(run.dir)] == [1, 3]


def test_repair_refuses_live_run(tmp_path):
    run = rustorch_tools.start_run(tmp_path, name="live")
    with open(run.dir / layout.METRICS, "ab") as fh:
        fh.write(b'{"step":0,')  # being written
    before = {p.name: p.read_bytes() for p in run.dir.iterdir() if p.is_file()}
    assert repair_runs(tmp_path).actions == []  # a live run is never touched
    assert {p.name: p.read_bytes() for p in run.dir.iterdir() if p.is_file()} == before
    assert runs.read_run(run.dir)["status"] == "running"
    run.finish()


def test_repair_migrates_legacy_run(tmp_path):
    import json

    d = tmp_path / "old-run"
    d.mkdir()
    (d / layout.RUN_JSON).write_text(json.dumps(
        {"run_id": "old-run", "state": "FINISHED", "start_time": 1.0, "end_time": 2.0, "params": {"a": 1}}))
    out = repair_runs(tmp_path)
    assert [(a.action, a.detail["from_version"]) for a in out.actions] == [("migrate", 0)]
    kept = d / out.actions[0].detail["previous"]["orphan"]  # the legacy run.json, byte for byte
    assert json.loads(kept.read_text())["state"] == "FINISHED"
    assert json.loads((d / layout.RUN_JSON).read_text())["schema_version"] == 1
    assert [e["event"] for e in runs.iter_events(d)] == ["migrated", "repaired"]
