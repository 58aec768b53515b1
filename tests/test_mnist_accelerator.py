"""The stock-style examples/mnist_accelerator.py, run as a user would: a copy in a fresh folder
with MNIST under ../data, no rustorch import in the script. A tiny runpy wrapper reports
afterwards what the device did (allocator peak, op counters), so the tests see that the
accelerator was really used."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "examples" / "mnist_accelerator.py"

WRAPPER = """\
import json, runpy, sys
import torch

script = sys.argv[1]
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")

import rustorch_device

print("DEVICE-REPORT " + json.dumps({
    "accelerator": str(torch.accelerator.current_accelerator()),
    "max_memory_allocated": torch.accelerator.max_memory_allocated(),
    "op_stats": rustorch_device.op_stats(),
}))
"""


def _layout(tmp_path: Path, data_root: Path | None) -> Path:
    """tmp/work/<script> + tmp/data/MNIST/raw (from `data_root`, else the shipped subset)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SCRIPT, work / SCRIPT.name)
    (work / "run_example.py").write_text(WRAPPER)
    raw = tmp_path / "data" / "MNIST" / "raw"
    if data_root is None:
        sys.path.insert(0, str(REPO / "examples"))
        from mnist_data import extract_shipped  # the subset ships with the examples

        extract_shipped(tmp_path / "data")
    else:
        raw.mkdir(parents=True)
        for f in (data_root / "MNIST" / "raw").iterdir():
            (raw / f.name).symlink_to(f.resolve())
    return work


def _run(work: Path, args: list[str], timeout: int) -> tuple[str, dict]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("TORCH_DEVICE_BACKEND_AUTOLOAD", None)
    proc = subprocess.run(
        [sys.executable, "run_example.py", SCRIPT.name, *args],
        cwd=work, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DEVICE-REPORT ")]
    assert len(lines) == 1, proc.stdout[-3000:]
    return proc.stdout, json.loads(lines[0].removeprefix("DEVICE-REPORT "))


def _accuracies(stdout: str) -> list[float]:
    return [float(m) for m in re.findall(r"Accuracy: \d+/\d+ \(([\d.]+)%\)", stdout)]


def _assert_device_used(report: dict) -> None:
    assert report["accelerator"] == "rustorch"
    assert report["max_memory_allocated"] > 0
    calls = sum(c["native"] + c["fallback"] for c in report["op_stats"].values())
    assert calls > 0, report["op_stats"]


def test_script_never_mentions_rustorch():
    assert "rustorch" not in SCRIPT.read_text().lower()


def test_dry_run_unmodified_on_rustorch(tmp_path):
    work = _layout(tmp_path, None)  # the shipped subset: works on a fresh clone
    stdout, report = _run(work, ["--dry-run", "--epochs", "1"], timeout=600)
    assert "Using device: rustorch" in stdout
    assert "Train Epoch: 1 [0/20000" in stdout
    assert len(_accuracies(stdout)) == 1
    _assert_device_used(report)
    assert (work / "run_example.py").exists() and not (work / "mnist_cnn.pt").exists()


@pytest.mark.slow
def test_full_epoch_reaches_98_percent(tmp_path, mnist_root):
    work = _layout(tmp_path, mnist_root)
    stdout, report = _run(work, ["--epochs", "1", "--log-interval", "200"], timeout=3600)
    (acc,) = _accuracies(stdout)
    assert acc >= 98.0, stdout[-2000:]
    _assert_device_used(report)
