"""`rustorch-tools trace`: a run and a pipeline as Chrome Trace Event JSON — every event well
formed, the trainer's spans and the profiler's operator events on one timeline; and, with
Chromium installed, the file parses and checks out in a headless browser too."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from rustorch_tools.cli import cli
from rustorch_tools.train import run_config

PHASES = {"X": ("name", "ts", "dur", "pid", "tid"), "i": ("name", "ts", "pid", "tid", "s"),
          "M": ("name", "pid", "args")}


def check_trace(doc: dict) -> list[dict]:
    """The Trace Event Format rules the viewers rely on; returns the events."""
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    for e in doc["traceEvents"]:
        assert e["ph"] in PHASES, e
        for key in PHASES[e["ph"]]:
            assert key in e, (key, e)
        assert isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], int | float) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
    json.dumps(doc, allow_nan=False)  # no NaN/Infinity: a browser's JSON.parse rejects them
    return doc["traceEvents"]


def _train(tmp_path):
    cfg = {"name": "traced", "seed": 1, "device": "rustorch", "epochs": 2, "max_steps_per_epoch": 2,
           "checkpoint_every": 1, "profile_steps": 1,
           "model": {"name": "mlp", "in_features": 8, "hidden": [8]}, "optimizer": {"name": "sgd", "lr": 0.1},
           "data": {"name": "synthetic", "samples": 64, "eval_samples": 16, "batch_size": 16, "shape": [8]}}
    return run_config(cfg, tmp_path / "runs")


def test_run_trace_has_every_layer_on_one_timeline(tmp_path):
    out = _train(tmp_path)
    target = tmp_path / "trace.json"
    result = CliRunner().invoke(cli, ["trace", out["run_dir"], "-o", str(target)])
    assert result.exit_code == 0, result.output
    events = check_trace(json.loads(target.read_text()))
    spans = [e for e in events if e["ph"] == "X"]
    cats = {e["cat"] for e in spans}
    assert {"epoch", "step", "phase", "eval", "checkpoint", "profile"} <= cats
    assert [e["args"]["epoch"] for e in spans if e["cat"] == "epoch"] == [1, 2]
    assert len([e for e in spans if e["cat"] == "step"]) == 4
    assert {e["name"] for e in spans if e["cat"] == "phase"} == {"data", "forward", "backward", "optimizer"}
    ops = [e for e in spans if e["cat"].startswith("profiler:")]
    assert any(e["name"].startswith("aten::") for e in ops)
    # the profiler's clock is merged: its operators fall inside the profiled step's span
    (window,) = [e for e in spans if e["cat"] == "profile"]
    inside = [e for e in ops if e["name"].startswith("aten::")
              and window["ts"] - 1e3 <= e["ts"] <= window["ts"] + window["dur"] + 1e3]
    assert len(inside) >= len([e for e in ops if e["name"].startswith("aten::")]) * 0.9
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"epochs", "steps", "step phases", "profiler: operators"} <= names

    if shutil.which("chromium"):
        page = tmp_path / "load.html"
        embedded = target.read_text().replace("</", "<\\/")
        page.write_text(textwrap.dedent(f"""
            <script id="t" type="application/json">{embedded}</script>
            <script>
              const d = JSON.parse(document.getElementById('t').textContent);
              const ok = d.traceEvents.every(e => typeof e.ph === 'string' && Number.isInteger(e.pid));
              document.title = ok ? 'TRACE-OK ' + d.traceEvents.length : 'TRACE-BAD';
              document.body.textContent = document.title;
            </script>"""))
        proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                               page.as_uri()], capture_output=True, text=True, timeout=120)
        assert f"TRACE-OK {len(events)}" in proc.stdout, proc.stderr[-2000:]


def test_pipeline_trace_and_bad_sources(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent('''
        [stages.a]
        python = "rustorch_tools.pipeline.builtins:noop"
        [stages.b]
        python = "rustorch_tools.pipeline.builtins:noop"
        deps = ["a"]
    '''))
    runs = tmp_path / "runs"
    assert CliRunner().invoke(cli, ["pipeline", "run", str(path), "--runs-dir", str(runs)]).exit_code == 0
    target = tmp_path / "trace.json"
    result = CliRunner().invoke(cli, ["trace", str(path), "--runs-dir", str(runs), "-o", str(target)])
    assert result.exit_code == 0, result.output
    events = check_trace(json.loads(target.read_text()))
    stages = [e for e in events if e.get("cat") == "stage"]
    assert [e["name"] for e in stages] == ["a", "b"]
    assert stages[0]["ts"] + stages[0]["dur"] <= stages[1]["ts"] + 1e3  # b ran after a

    for bad in (["trace", "no-such-run", "--runs-dir", str(runs)], ["trace", str(tmp_path / "x.toml")],
                ["trace", "../etc", "--runs-dir", str(runs)]):
        result = CliRunner().invoke(cli, [*bad, "-o", str(tmp_path / "t.json")])
        assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output, bad


@pytest.fixture(autouse=True)
def _quiet_profiler(monkeypatch):
    monkeypatch.setenv("KINETO_LOG_LEVEL", "5")
