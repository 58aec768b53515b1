"""The logging API: start_run / attach_run / Run."""

import json
import math
import time
import warnings
from pathlib import Path

import pytest

import rustorch_tools
from rustorch_tools.errors import (
    ArtifactExistsError,
    InvalidNameError,
    NotSerializableError,
    RunNotFoundError,
    RunStateError,
)
from rustorch_tools.store import jsonl, layout, manifest, runs, schema


def rows(run_dir):
    return list(runs.iter_metrics(run_dir))


def assert_files_valid(run_dir: Path) -> None:
    assert schema.validate_document("run", json.loads((run_dir / layout.RUN_JSON).read_text())) == []
    for name, kind in ((layout.METRICS, "metric_row"), (layout.EVENTS, "event")):
        for result in jsonl.scan(run_dir / name):
            assert result.error is None, (name, result)
            assert schema.validate_document(kind, result.row) == [], result.row
    assert manifest.verify(run_dir) == []


def test_start_run_writes_the_documented_layout(tmp_path):
    cfg = {"lr": 0.1, "layers": [1, 2]}
    with rustorch_tools.start_run(root=tmp_path, name="mnist", config=cfg, seed=3, tags=["a"]) as run:
        for i in range(5):
            run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 10}, step=i)
        run.log_params({"batch_size": 64})
        run.set_tags({"team": "x"})
    d = tmp_path / run.run_id
    layout.validate_run_id(run.run_id)
    assert "mnist" in run.run_id
    assert sorted(p.name for p in d.iterdir()) == [
        ".lock", "artifacts", "checkpoints", "events.jsonl", "manifest.json", "metrics.jsonl",
        "run.json"]
    # finish() recorded what the run holds (manifest.json `logs`), so later loss is provable
    logs = manifest.read_manifest(d)["logs"]
    assert logs["metrics.jsonl"]["bytes"] == (d / "metrics.jsonl").stat().st_size
    doc = runs.read_run(d)
    assert doc["status"] == "finished" and doc["ended_at"] >= doc["started_at"]
    assert "ranks" not in doc  # a single process has no ranks map
    assert doc["config"] == cfg and doc["params"] == {"batch_size": 64} and doc["seed"] == 3
    assert doc["tags"] == {"a": "", "team": "x"}
    assert doc["environment"]["pid"] > 0 and doc["environment"]["python"].startswith("3.")
    assert doc["summary"]["step"] == 4 and doc["summary"]["metrics"] == {"loss": 0.2, "acc": 0.4}
    got = rows(d)
    assert [r["step"] for r in got] == [0, 1, 2, 3, 4]
    assert got[2]["loss"] == 1 / 3
    assert [e["event"] for e in runs.iter_events(d)] == ["created", "finished"]
    assert_files_valid(d)


def test_default_steps_and_non_decreasing(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="s") as run:
        run.log_metric("a", 1)
        run.log_metric("a", 2)
        run.log_metrics({"a": 3}, step=10)
        run.log_metrics({"b": 4}, step=10)  # same step again is fine
        with pytest.raises(ValueError, match="must not decrease"):
            run.log_metrics({"a": 1}, step=9)
        with pytest.raises(ValueError, match=">= 0"):
            run.log_metrics({"a": 1}, step=-1)
        with pytest.raises(TypeError):
            run.log_metrics({"a": 1}, step=1.5)
    assert [(r["step"], r.get("a", r.get("b"))) for r in rows(run.dir)] == [(0, 1), (1, 2), (10, 3), (10, 4)]


def test_failed_on_exception(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with rustorch_tools.start_run(root=tmp_path, name="boom") as run:
            run.log_metrics({"x": 1.0}, step=0)
            1 / 0  # noqa: B018
    doc = runs.read_run(run.dir)
    assert doc["status"] == "failed"
    assert doc["error"]["type"] == "ZeroDivisionError" and "division" in doc["error"]["message"]
    assert "Traceback" in doc["error"]["traceback"]
    assert [e["event"] for e in runs.iter_events(run.dir)] == ["created", "failed"]
    assert rows(run.dir)[0]["x"] == 1.0  # the buffer was flushed before failing
    assert_files_valid(run.dir)


def test_logging_after_finish_is_refused(tmp_path):
    run = rustorch_tools.start_run(root=tmp_path, name="x")
    run.finish()
    run.finish()  # idempotent
    with pytest.raises(RunStateError):
        run.log_metrics({"a": 1})
    assert not run._thread.is_alive()


@pytest.mark.parametrize("name", ["a/b", "..", "../evil", "x\\y", "a..b", ""])
def test_bad_run_names(tmp_path, name):
    with pytest.raises(InvalidNameError):
        rustorch_tools.start_run(root=tmp_path, name=name)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("run_id", ["../x", "a/b", ".hidden", ".."])
def test_bad_run_ids(tmp_path, run_id):
    with pytest.raises(InvalidNameError):
        rustorch_tools.start_run(root=tmp_path, run_id=run_id)


def test_bad_params_and_config_name_the_key(tmp_path):
    with pytest.raises(NotSerializableError, match=r"config\.opt\.fn"):
        rustorch_tools.start_run(root=tmp_path, name="x", config={"opt": {"fn": print}})
    with pytest.raises(NotSerializableError, match="NaN"):
        rustorch_tools.start_run(root=tmp_path, name="x", config={"lr": float("nan")})
    with rustorch_tools.start_run(root=tmp_path, name="x") as run:
        with pytest.raises(NotSerializableError, match=r"params\.obj"):
            run.log_params({"obj": object()})
        with pytest.raises(NotSerializableError, match="keys must be strings"):
            run.log_params({1: 2})
        run.log_params({"a": 1})
        run.log_params({"a": 1})
        with pytest.raises(RunStateError, match="overwrite=True"):
            run.log_params({"a": 2})
        run.log_params({"a": 2}, overwrite=True)
    assert runs.read_run(run.dir)["params"] == {"a": 2}


def test_config_from_dataclass_and_namespace(tmp_path):
    import argparse
    import dataclasses

    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.5
        dims: tuple = (1, 2)

    with rustorch_tools.start_run(root=tmp_path, name="d", config=Cfg()) as run:
        pass
    assert runs.read_run(run.dir)["config"] == {"lr": 0.5, "dims": [1, 2]}
    with rustorch_tools.start_run(root=tmp_path, name="n", config=argparse.Namespace(a=1)) as run:
        pass
    assert runs.read_run(run.dir)["config"] == {"a": 1}


def test_bad_metrics(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="x") as run:
        for bad in ({"_x": 1}, {"": 1}, {"step": 1}, {"x" * 201: 1}):
            with pytest.raises(InvalidNameError):
                run.log_metrics(bad)
        with pytest.raises(TypeError, match="not a real number"):
            run.log_metrics({"a": "text"})
        with pytest.raises(TypeError, match="not a real number"):
            run.log_metrics({"a": 1 + 2j})
        with pytest.raises(ValueError, match="at least one"):
            run.log_metrics({})
    assert rows(run.dir) == []


def test_nonfinite_kept_flagged_and_warned_once(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="nf") as run:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log_metrics({"loss": math.nan, "ok": 1.0}, step=0)
            run.log_metrics({"loss": math.inf}, step=1)
            run.log_metrics({"loss": -math.inf}, step=2)
        assert len([w for w in caught if issubclass(w.category, rustorch_tools.NonFiniteMetricWarning)]) == 1
    got = rows(run.dir)
    assert math.isnan(got[0]["loss"]) and got[1]["loss"] == math.inf and got[2]["loss"] == -math.inf
    assert all(r["_nonfinite"] == ["loss"] for r in got)
    assert runs.read_run(run.dir)["summary"]["metrics"]["loss"] == "-inf"
    assert_files_valid(run.dir)


def test_numpy_and_tensor_values(tmp_path):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    with rustorch_tools.start_run(root=tmp_path, name="v") as run:
        run.log_metrics({"a": np.float32(0.5), "b": torch.tensor(2.5), "c": np.int64(3), "d": True})
        with pytest.raises(TypeError, match="scalar"):
            run.log_metrics({"e": torch.ones(2)})
    row = rows(run.dir)[0]
    assert row["a"] == 0.5 and row["b"] == 2.5 and row["c"] == 3 and row["d"] == 1


def test_flush_every_and_flush_interval(tmp_path):
    run = rustorch_tools.start_run(root=tmp_path, name="f", flush_every=3, flush_interval_s=3600)
    for i in range(5):
        run.log_metrics({"a": i}, step=i)
    assert len(rows(run.dir)) == 3  # one flush of 3, 2 still buffered
    run.finish()
    assert len(rows(run.dir)) == 5
    run = rustorch_tools.start_run(root=tmp_path, name="t", flush_every=10**6, flush_interval_s=0.05)
    run.log_metrics({"a": 1}, step=0)
    deadline = time.monotonic() + 30
    while not rows(run.dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(rows(run.dir)) == 1
    run.finish()


def test_heartbeat_advances_and_thread_stops(tmp_path):
    run = rustorch_tools.start_run(root=tmp_path, name="hb", heartbeat_interval_s=0.05)
    first = runs.read_run(run.dir)["heartbeat_at"]
    run.log_metrics({"a": 1.5}, step=7)
    deadline = time.monotonic() + 30
    while runs.read_run(run.dir)["heartbeat_at"] == first and time.monotonic() < deadline:
        time.sleep(0.02)
    doc = runs.read_run(run.dir)
    assert doc["heartbeat_at"] > first
    assert run._thread.is_alive()
    run.finish()
    assert not run._thread.is_alive()


def test_artifacts(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "report.txt").write_text("hello")
    (src / "sub").mkdir()
    (src / "sub" / "a.bin").write_bytes(b"\x00\x01")
    with rustorch_tools.start_run(root=tmp_path / "runs", name="art") as run:
        assert run.log_artifact(src / "report.txt") == "artifacts/report.txt"
        assert run.log_artifact(src, name="bundle") == "artifacts/bundle"
        with pytest.raises(ArtifactExistsError):
            run.log_artifact(src / "report.txt")
        run.log_artifact(src / "sub" / "a.bin", name="report.txt", overwrite=True)
        for bad in ("../x", "a/b", ".."):
            with pytest.raises(InvalidNameError):
                run.log_artifact(src / "report.txt", name=bad)
        with pytest.raises(FileNotFoundError):
            run.log_artifact(src / "absent")
    files = manifest.read_manifest(run.dir)["files"]
    assert set(files) == {"artifacts/report.txt", "artifacts/bundle/report.txt", "artifacts/bundle/sub/a.bin"}
    assert (run.dir / "artifacts" / "report.txt").read_bytes() == b"\x00\x01"
    assert_files_valid(run.dir)
    assert [e["event"] for e in runs.iter_events(run.dir)].count("artifact") == 3


def test_reopen_finished_run_resumes(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="r", config={"lr": 1}) as run:
        run.log_metrics({"a": 1}, step=0)
    with pytest.raises(RunStateError, match="another config"):
        rustorch_tools.start_run(root=tmp_path, run_id=run.run_id, config={"other": 1})
    with rustorch_tools.start_run(root=tmp_path, run_id=run.run_id) as again:
        again.log_metrics({"a": 2}, step=1)
    assert [e["event"] for e in runs.iter_events(run.dir)] == ["created", "finished", "resumed", "finished"]
    assert [r["a"] for r in rows(run.dir)] == [1, 2]


def test_live_run_refuses_second_writer_without_rank(tmp_path):
    run = rustorch_tools.start_run(root=tmp_path, name="live")
    with pytest.raises(RunStateError, match="is live"):
        rustorch_tools.start_run(root=tmp_path, run_id=run.run_id)
    other = rustorch_tools.attach_run(tmp_path, run.run_id, rank=1)
    other.log_metrics({"a": 1}, step=0)
    other.finish()
    doc = runs.read_run(run.dir)
    assert doc["status"] == "running"  # rank 1 does not finish the run
    assert doc["ranks"] == {"main": "running", "1": "finished"}
    run.finish()
    doc = runs.read_run(run.dir)
    assert doc["status"] == "finished" and doc["ranks"] == {"main": "finished", "1": "finished"}
    assert rows(run.dir)[0]["rank"] == 1
    with pytest.raises(RunNotFoundError):
        rustorch_tools.attach_run(tmp_path, "nope", rank=0)


def test_stale_run_is_crashed_then_resumed(tmp_path):
    run = rustorch_tools.start_run(root=tmp_path, name="c")
    run._stop.set()  # simulate the process dying: no more heartbeats, no finish
    run._thread.join()
    # No writer identity (a run from another host or an older version): the heartbeat decides.
    runs.update_run(run.dir, lambda d: (d.update(heartbeat_at=d["heartbeat_at"] - 3600),
                                        d.pop("writer")))
    doc = runs.read_run(run.dir)
    assert runs.is_stale(doc) and runs.effective_status(doc) == "crashed"
    with rustorch_tools.start_run(root=tmp_path, run_id=run.run_id) as again:
        again.log_metrics({"a": 1}, step=0)
    assert [e["event"] for e in runs.iter_events(run.dir)] == ["created", "crashed", "resumed", "finished"]
    run._closed = True


def test_parent_lineage(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="base") as base:
        pass
    with rustorch_tools.start_run(root=tmp_path, name="ft", parent=base, relation="finetune",
                                  parent_checkpoint="checkpoints/ckpt-0000000010.safetensors") as ft:
        pass
    assert runs.read_run(ft.dir)["parent"] == {
        "run_id": base.run_id, "relation": "finetune",
        "checkpoint": "checkpoints/ckpt-0000000010.safetensors"}
    with pytest.raises(RunNotFoundError):
        rustorch_tools.start_run(root=tmp_path, name="x", parent="missing-run")
    with pytest.raises(ValueError, match="relation"):
        rustorch_tools.start_run(root=tmp_path, name="x", parent=base, relation="cousin")


def _device() -> bool:
    try:
        import torch

        import rustorch_device  # noqa: F401

        torch.empty(1, device="rustorch")
        return True
    except Exception:
        return False


def test_device_telemetry(tmp_path):
    has_device = _device()
    if has_device:
        import torch

        x = torch.randn(64, device="rustorch")
        (x * 2).sum()
    with rustorch_tools.start_run(root=tmp_path, name="tel") as run:
        values = run.log_device_telemetry(step=0)
    got = rows(run.dir)
    if not has_device:
        # Skipped gracefully: whatever is there (maybe nothing) was logged, nothing raised.
        assert (got[0] if got else {}).keys() >= values.keys()
        return
    import rustorch_device

    stats = rustorch_device.op_stats()
    assert values["device/ops/native_total"] == sum(v["native"] for v in stats.values())
    assert values["device/ops/fallback_total"] == sum(v["fallback"] for v in stats.values())
    assert values["device/ops/native_total"] + values["device/ops/fallback_total"] >= 2
    assert values["device/memory/max_allocated_bytes"] >= 64 * 4
    assert got[0]["device/ops/fallback_total"] == values["device/ops/fallback_total"]


EXIT_SCRIPT = """
import sys
import rustorch_tools
run = rustorch_tools.start_run(sys.argv[1], run_id=sys.argv[2])
run.log_metrics({"a": 1.0}, step=0)
if sys.argv[3] == "raise":
    raise RuntimeError("uncaught")
"""


@pytest.mark.parametrize("how,status", [("exit", "finished"), ("raise", "failed")])
def test_interpreter_exit_without_finish(tmp_path, how, status):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(tmp_path), "r1", how],
                          env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
    assert proc.returncode == (0 if how == "exit" else 1), proc.stderr
    doc = runs.read_run(tmp_path / "r1")
    assert doc["status"] == status
    if status == "failed":
        assert doc["error"]["type"] == "RuntimeError"
    assert rows(tmp_path / "r1")[0]["a"] == 1.0
