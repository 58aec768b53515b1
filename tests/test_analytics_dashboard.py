"""`dashboard`: findings over time from the validation history, metric and device telemetry
drift with thresholds, one offline HTML file that renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from support import analytics_synth as synthetic

from rustorch_tools.cli import cli
from rustorch_tools.governance.incremental import validate_incremental
from rustorch_tools.store import layout


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=120)
    for i in range(3):  # runs with device telemetry, an hour apart after the family
        doc = synthetic.run_doc(f"dev{i}", started_at=1_764_300_000.0 + 3600 * (7 + i))
        synthetic.write_run(r, doc, synthetic.training_rows(
            201, start_time=doc["started_at"], device=True, step_time_ms=10.0 + 5 * i))
    validate_incremental(r, jobs=1)
    with open(r / "base" / layout.METRICS, "ab") as fh:  # a new error for the second pass
        fh.write(b"not a line\n")
    validate_incremental(r, jobs=1)
    return r


def _dash(root, out, *extra):
    return CliRunner().invoke(cli, ["dashboard", str(root), "-o", str(out), *map(str, extra)])


def test_dashboard_sections_thresholds_and_self_contained(root, tmp_path):
    out = tmp_path / "dash.html"
    res = _dash(root, out, "--threshold", "val_acc>=0.9", "--threshold",
                "device/memory/max_allocated_bytes<=1000150")
    assert res.exit_code == 1, res.output  # the failed run and a memory peak are past
    html = out.read_text()
    for anchor in ('id="findings"', 'id="drift"', 'id="telemetry"'):
        assert anchor in html
    assert "2 pass(es)" in html and "base" in html.split('id="findings"')[1].split('id="drift"')[0]
    assert "failed: 0.0997" in html  # flagged accuracy, listed under its chart
    for title in ("step time: mean step_time_ms", "fallback ops", "peak accelerator memory"):
        assert title in html
    n = html.count('class="plotly-graph-div"')
    assert n >= 6 and f"{n} charts" in res.output
    outside = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "<script" not in outside.lower() and "<link" not in outside.lower()
    assert all(r.startswith("#") for r in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', outside))
    assert _dash(root, out).exit_code == 0  # no threshold, nothing flagged


def test_dashboard_usage_errors_and_empty_dirs(root, tmp_path):
    out = tmp_path / "d.html"
    assert _dash(root, out, "--threshold", "val_acc>>1").exit_code == 2
    res = _dash(root, out, "--metric", "nope")
    assert res.exit_code == 2 and "not logged by any run: nope" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _dash(empty, out)
    assert res.exit_code == 0, res.output
    assert "No validation history yet" in out.read_text()


def _browser() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def test_dashboard_renders_in_headless_chromium(root, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium) - browser check skipped")
    out = tmp_path / "dash.html"
    _dash(root, out, "--threshold", "val_acc>=0.9")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
         "--enable-logging=stderr", "--v=0", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []
    charts = out.read_text().count('class="plotly-graph-div"')
    # plotly drew every chart: each div gets its SVG layers and a legend.
    assert proc.stdout.count('class="main-svg"') >= 2 * charts
    assert proc.stdout.count('class="legend"') >= charts - 1
