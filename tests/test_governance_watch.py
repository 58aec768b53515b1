"""`validate --incremental` and `watch`: only changed runs are re-checked, each pass lands in
the history, new errors can quarantine and fire hooks, SIGTERM stops the service cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.governance_synth import make_run

from rustorch_tools.cli import cli
from rustorch_tools.governance.incremental import (
    cache_path,
    read_history,
    validate_incremental,
)
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.governance.watch import parse_interval
from rustorch_tools.store import runs as store_runs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for i in range(5):
        make_run(root, f"run-{i}", rows=10, parent="run-0" if i == 4 else None)
    return root


def _corrupt(run: Path) -> None:
    data = bytearray((run / "metrics.jsonl").read_bytes())
    data[len(data) // 2] ^= 1
    (run / "metrics.jsonl").write_bytes(bytes(data))


def test_only_changed_runs_are_rechecked(runs):
    first = validate_incremental(runs, jobs=1)
    assert len(first.checked) == 5 and first.reused == 0
    second = validate_incremental(runs, jobs=1)
    assert second.checked == [] and second.reused == 5
    store_runs.append_rows(runs / "run-2" / "metrics.jsonl", [{"step": 99, "time": 1.0, "loss": 0.1}])
    os.utime(runs / "run-3" / "run.json")  # a touch counts as a change too
    third = validate_incremental(runs, jobs=1)
    assert third.checked == ["run-2", "run-3"] and third.reused == 3
    _corrupt(runs / "run-1")
    fourth = validate_incremental(runs, jobs=1)
    assert fourth.checked == ["run-1"] and fourth.new_errors == ["run-1"]
    fifth = validate_incremental(runs, jobs=1)  # reused findings still count, but are not new
    assert fifth.checked == [] and fifth.new_errors == []
    full = validate_runs(runs, jobs=1)
    assert fifth.report.summary() == full.summary()
    assert sorted(f.code for f in fifth.report.all_findings()) == sorted(f.code for f in full.all_findings())
    hist = read_history(runs)
    assert [h["checked"] for h in hist] == [5, 0, 2, 1, 0]
    assert hist[3]["new_errors"] == ["run-1"] and "run-1" in hist[4]["errors"]


def test_tree_checks_see_reused_runs(runs):
    validate_incremental(runs, jobs=1)
    shutil.rmtree(runs / "run-0")  # run-4's parent disappears; run-4 itself is unchanged
    out = validate_incremental(runs, jobs=1)
    assert out.checked == [] and out.removed == ["run-0"]
    codes = {f.code for r in out.report.runs if r.folder == "run-4" for f in r.findings}
    assert "RT501" in codes


def test_hostile_cache_means_a_full_pass(runs):
    validate_incremental(runs, jobs=1)
    for junk in (b"\x00garbage", b'{"format":"rustorch-validate-cache","version":1,"runs":{"run-0":7}}',
                 b"[" * 100000):
        cache_path(runs).write_bytes(junk)
        out = validate_incremental(runs, jobs=1)
        assert len(out.checked) == 5


def test_validate_incremental_cli(runs):
    r = CliRunner().invoke(cli, ["validate", str(runs), "--incremental", "--json"])
    assert r.exit_code == 0, r.output
    _corrupt(runs / "run-3")
    r = CliRunner().invoke(cli, ["validate", str(runs), "--incremental"])
    assert r.exit_code == 1 and "1 runs checked, 4 unchanged, 1 newly with errors" in r.output


def test_parse_interval():
    assert parse_interval("10m") == 600 and parse_interval("90") == 90 and parse_interval("1.5h") == 5400
    for bad in ("", "0", "-1m", "10x", "m"):
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_watch_quarantines_fires_hooks_and_stops_on_sigterm(runs, tmp_path):
    _corrupt(runs / "run-1")
    hook_out = tmp_path / "hook.json"
    hook = f"{sys.executable} -c \"import sys; open({str(hook_out)!r}, 'w').write(sys.stdin.read())\""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "rustorch_tools", "watch", str(runs), "--every", "1h",
                             "--quarantine", "--hook", hook, "-j", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not read_history(runs) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    line = json.loads(out.splitlines()[0])
    assert line["new_errors"] == ["run-1"] and line["quarantined"] == ["run-1"]
    assert line["hooks"][0]["ok"], line["hooks"]
    payload = json.loads(hook_out.read_text())
    assert payload["event"] == "validation" and payload["new_errors"] == ["run-1"]
    assert (runs / ".quarantine" / "run-1").is_dir() and not (runs / "run-1").exists()
    assert len(read_history(runs)) == 1  # one pass, then a clean stop during the wait
