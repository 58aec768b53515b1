"""`replay`: the MNIST demo (a few steps on the shipped subset) replays bit-exactly on CPU and
on rustorch (at another thread count), a changed data file makes replay impossible (exit 2),
and a nondeterministic entry point is caught at its first diverging step (exit 1)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mnist_data as datasets
import pytest

from rustorch_tools.repro.compare import compare
from rustorch_tools.store import runs as store_runs

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "mnist_rustorch_demo.py"
TINY = ["--epochs", "1", "--max-steps", "3", "--no-compile", "--no-progress",
        "--test-batch-size", "1000"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in datasets.DOWNLOAD_ENV}
    env.pop("RUSTORCH_DATA", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _py(args: list[str], cwd: Path, threads: int = 2) -> subprocess.CompletedProcess:
    env = _env()
    env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _tools(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return _py(["-m", "rustorch_tools", *map(str, args)], cwd)


def _run_dirs(runs: Path) -> list[Path]:
    return sorted(d for d in runs.iterdir() if not d.name.startswith("."))


def _demo_run(tmp: Path, device: str, data: Path | None = None) -> Path:
    runs = tmp / "runs"
    args = [str(DEMO), *TINY, "--device", device, "--runs-dir", str(runs)]
    args += ["--data", str(data)] if data else ["--subset"]
    proc = _py(args, tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = _run_dirs(runs)
    return run


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory) -> tuple[Path, Path]:
    """A CPU demo run on a private copy of the shipped subset (so a test may change it)."""
    tmp = tmp_path_factory.mktemp("replay_cpu")
    raw = tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in datasets.shipped_dir().glob("*.gz"):
        shutil.copy(gz, raw / gz.name)
    return _demo_run(tmp, "cpu", tmp / "data"), raw


def test_cpu_run_replays_bit_exactly(cpu_run, tmp_path):
    run, _ = cpu_run
    proc = _tools("replay", run, "--into", tmp_path / "replays", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["divergence"] is None and out["compared_values"] >= 6  # 3 losses + epoch metrics
    assert {"time/step_s", "train/samples_per_s"} <= set(out["skipped_metrics"])  # timings
    doc = store_runs.read_run(tmp_path / "replays" / out["replay_run"])
    assert doc["tags"]["replay_of"] == run.name and doc["status"] == "finished"


def test_changed_data_file_makes_replay_impossible(cpu_run, tmp_path):
    run, raw = cpu_run
    labels = raw / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[8] = (data[8] + 1) % 10  # one test label changed, still a valid file
    labels.write_bytes(gzip.compress(bytes(data), mtime=0))
    proc = _tools("replay", run, "--into", tmp_path / "replays", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "data digest differs" in proc.stdout and "t10k-labels" in proc.stdout
    assert not (tmp_path / "replays").exists()  # nothing was executed


def test_rustorch_run_replays_bit_exactly_at_another_thread_count(tmp_path):
    run = _demo_run(tmp_path, "rustorch")
    bundle = tmp_path / "run.rtb"
    assert _tools("bundle", "create", run, "-o", bundle, cwd=tmp_path).returncode == 0
    proc = _tools("replay", bundle, "--into", tmp_path / "replays", "--threads", "1", "--json",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["divergence"] is None and out["compared_values"] >= 6
    rec = json.loads((tmp_path / "replays" / out["replay_run"] / "artifacts" / "replay.json").read_text())
    assert rec["runtime"]["threads"] == 1 and rec["runtime"]["deterministic"] is True
    assert rec["runtime"]["device"].startswith("rustorch")


NOISY = '''
import os, sys, time
import torch
import rustorch_tools
from rustorch_tools.repro.record import record_entry_point
torch.manual_seed(0)
with rustorch_tools.start_run(root=sys.argv[2], name="noisy", seed=0) as run:
    record_entry_point(run, script=__file__, argv=sys.argv[1:], device="cpu")
    for step in range(4):
        value = float(torch.rand(()))
        if step == 2:
            value += time.perf_counter_ns() % 1000 + 1  # never the same twice
        run.log_metrics({"x": value}, step=step)
'''


def test_nondeterministic_entry_point_diverges_at_its_first_different_step(tmp_path):
    script = tmp_path / "noisy.py"
    script.write_text(NOISY)
    proc = _py([str(script), "--runs-dir", str(tmp_path / "runs")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = _run_dirs(tmp_path / "runs")
    proc = _tools("replay", run, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "first divergence at step 2, metric 'x'" in proc.stdout


def test_compare_reports_the_first_difference():
    a = [{"step": 0, "metrics": {"loss": 0.5, "acc": 1}}, {"step": 1, "metrics": {"loss": 0.25}}]
    assert compare(a, a).identical and compare(a, a).compared == 3
    b = [{"step": 0, "metrics": {"loss": 0.5, "acc": 1.0}}, {"step": 1, "metrics": {"loss": 0.25}}]
    d = compare(a, b).divergence
    assert (d.step, d.metric, d.original, d.replay) == (0, "acc", 1, 1.0)
    c = [{"step": 0, "metrics": {"loss": 0.5, "acc": 1}}, {"step": 1, "metrics": {"loss": -0.0 + 0.2500001}}]
    assert compare(a, c).divergence.step == 1
    assert compare(a, a[:1]).divergence.reason == "missing in the replay"
    timed = [{"step": 0, "metrics": {"loss": 0.5, "epoch_seconds": 1.0}}]
    other = [{"step": 0, "metrics": {"loss": 0.5, "epoch_seconds": 2.0}}]
    result = compare(timed, other, ["*seconds*"])
    assert result.identical and result.skipped == ["epoch_seconds"]
