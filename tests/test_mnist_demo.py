"""examples/mnist_rustorch_demo.py: data resolution and exit codes, a short logged run on the
shipped subset, and (slow) the accuracy goals on the subset and on full MNIST."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "mnist_rustorch_demo.py"
DOWNLOAD_ENV = ("MNIST_ALLOW_DOWNLOAD", "CLOUD_MNIST_OK", "CODEX_CLOUD")


def _run(args: list[str], cwd: Path, timeout: int = 900, **env_extra: str):
    env = {k: v for k, v in os.environ.items() if k not in DOWNLOAD_ENV}
    env.pop("RUSTORCH_DATA", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(env_extra)
    return subprocess.run([sys.executable, str(DEMO), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _final_accuracy(stdout: str) -> float:
    (acc,) = re.findall(r"final test accuracy: ([\d.]+)%", stdout)
    return float(acc)


def _only_run(runs: Path) -> Path:
    dirs = [d for d in runs.iterdir() if not d.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_missing_data_exits_2_and_says_where_it_looked(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _run(["--data", str(empty), "--runs-dir", str(tmp_path / "runs")], tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(empty) in proc.stderr and "MNIST_ALLOW_DOWNLOAD=1" in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing logged for a run that never started


def test_bad_arguments_exit_2(tmp_path):
    proc = _run(["--epochs", "0"], tmp_path, timeout=300)
    assert proc.returncode == 2 and "--epochs" in proc.stderr


def test_short_run_logs_and_checkpoints(tmp_path):
    """A few eager steps on the shipped subset (the compiled path is covered by
    tests/test_compile_backend.py; compiling here would cost a cold compile per test run)."""
    from rustorch_tools.store import runs as store_runs

    runs = tmp_path / "runs"
    proc = _run(["--subset", "--epochs", "2", "--max-steps", "5", "--no-compile",
                 "--runs-dir", str(runs)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "shipped subset" in proc.stdout
    assert "batch/s" not in proc.stdout + proc.stderr and "it/s" not in proc.stdout  # no bar off a TTY
    accuracy = _final_accuracy(proc.stdout)
    assert 0.0 <= accuracy <= 100.0
    run_dir = _only_run(runs)
    doc = store_runs.read_run(run_dir)
    assert doc["status"] == "finished" and doc["seed"] == 1
    assert doc["environment"]["torch"] and doc["config"]["epochs"] == 2
    assert doc["config"]["entry_point"] == "rustorch_tools.train.config:run_config"
    rows = list(store_runs.iter_metrics(run_dir))
    losses = [r for r in rows if "train/loss" in r]
    epochs = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in losses] == list(range(10))
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert abs(100 * epochs[-1]["eval/accuracy"] - accuracy) < 0.01
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len([c for c in checkpoints if c != "latest" and not c.startswith(".")]) >= 1
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert any(k.startswith("checkpoints/") for k in manifest["files"])


@pytest.mark.slow
@pytest.mark.timeout(3600)  # pyproject's 900 s default is for the fast suite
def test_demo_on_subset_reaches_95_percent(tmp_path):
    proc = _run(["--subset", "--epochs", "2", "--no-progress", "--runs-dir", str(tmp_path / "runs")],
                tmp_path, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert _final_accuracy(proc.stdout) >= 95.0, proc.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_demo_on_full_mnist_reaches_99_percent_in_3_epochs(tmp_path, mnist_root):
    proc = _run(["--data", str(mnist_root), "--epochs", "3", "--no-progress",
                 "--runs-dir", str(tmp_path / "runs")], tmp_path, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert _final_accuracy(proc.stdout) >= 99.0, proc.stdout[-2000:]
