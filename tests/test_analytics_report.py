"""`report`: one self-contained HTML file with curves, comparison, gates and drift.

The browser test needs Chromium (`apt-get install -y chromium`); it skips, saying so,
when no `chromium` / `chromium-browser` / `google-chrome` is on PATH.
"""

import re
import shutil
import struct
import subprocess

import pytest
from click.testing import CliRunner
from support import analytics_synth as synthetic

from rustorch_tools.cli import cli
from rustorch_tools.store import layout


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=150)
    return r


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def make_report(root, tmp_path, *extra):
    out = tmp_path / "report.html"
    res = invoke("report", root, "-o", out, *extra)
    return res, out


def test_report_sections_and_self_contained(root, tmp_path):
    res, out = make_report(root, tmp_path, "--baseline", "base", "--rule", "val_acc >= -1%",
                           "--drift-metric", "val_acc", "--drift-threshold", "0.9")
    html = out.read_text()
    assert res.exit_code == 1  # the failed run breaks the gate
    for anchor in ('id="curves"', 'id="comparison"', 'id="gates"', 'id="drift"'):
        assert anchor in html
    assert html.count('class="plotly-graph-div"') == 4  # loss, val_acc, step_time_ms, drift
    assert_self_contained(html)
    # Gate table: 5 runs against base, only the failed one fails.
    assert html.count('class="fail">FAIL<') == 1
    assert "1 of 5 run(s) failed" in html
    # Drift: the failed run's accuracy (0.1) is under 0.9.
    assert "1 run(s) past it" in html and "threshold 0.9" in html
    for run_id in ("base", "fork", "resume", "finetune", "rerun", "failed"):
        assert f"<td>{run_id}</td>" in html


def assert_self_contained(html: str) -> None:
    """plotly.js inline, nothing loaded from elsewhere (checked outside the scripts)."""
    assert "plotly.js" in html.lower() or "Plotly.newPlot" in html
    outside = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "<script" not in outside.lower() and "<link" not in outside.lower()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', outside)
    assert refs and all(r.startswith("#") for r in refs)
    assert "@import" not in outside and "url(" not in outside


def test_report_without_gates_exits_0_and_uses_own_baselines(root, tmp_path):
    res, out = make_report(root, tmp_path, "--metric", "loss", "--max-curves", "2")
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'id="gates"' not in html and "each run's own baseline" in html
    assert html.count('"mode":"lines"') >= 2  # two runs' loss curves
    assert "No threshold given" in html


def test_report_escapes_hostile_text(tmp_path):
    doc = synthetic.run_doc("x1", name="<script>alert(1)</script>", config={"<b>": "</td>"})
    synthetic.write_run(tmp_path, doc, [{"step": 0, "time": 1.0, "<img src=x onerror=1>": 1.0}])
    res, out = make_report(tmp_path, tmp_path, "--metric", "<img src=x onerror=1>")
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html  # in chart data as \u003cimg, in text as &lt;img


def test_report_lists_problems_and_empty_dirs_work(root, tmp_path):
    (root / "fork" / layout.RUN_JSON).write_text("{")
    with open(root / "base" / layout.METRICS, "ab") as fh:
        fh.write(b"not a line\n")
    res, out = make_report(root, tmp_path)
    assert res.exit_code == 0
    html = out.read_text()
    assert "fork: unreadable" in html and "base: 1 corrupt line(s)" in html
    empty = tmp_path / "empty"
    empty.mkdir()
    res, out = make_report(empty, tmp_path)
    assert res.exit_code == 0 and "No metrics logged" in out.read_text()


def test_report_usage_errors(root, tmp_path):
    assert make_report(root, tmp_path, "--rule", "loss <= 0")[0].exit_code == 2  # no baseline
    assert make_report(root, tmp_path, "--baseline", "ghost")[0].exit_code == 2
    assert make_report(tmp_path / "nope", tmp_path)[0].exit_code == 2
    res = make_report(root, tmp_path, "--metric", "los")
    assert res[0].exit_code == 2 and "not logged by any run: los" in res[0].output
    assert make_report(root, tmp_path, "--drift-metric", "acc")[0].exit_code == 2


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _screenshot(browser: str, page, png) -> list[str]:
    """Screenshot `page`; returns the console messages Chromium logged."""
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,2400", f"--screenshot={png}", "--enable-logging=stderr", "--v=0",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]


def _png_size(png) -> tuple[int, int]:
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_renders_in_headless_chromium_without_console_errors(root, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium) - browser check skipped")
    # The console check must be able to fail: a page with an error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('x'); nope();</script></body></html>")
    assert _screenshot(browser, bad, tmp_path / "bad.png")
    res, out = make_report(root, tmp_path, "--baseline", "base", "--rule", "val_acc >= -1%",
                           "--drift-threshold", "0.9")
    assert res.exit_code == 1
    png = tmp_path / "report.png"
    assert _screenshot(browser, out, png) == []
    assert _png_size(png) == (1400, 2400)
    assert png.stat().st_size > 50_000  # charts and tables drawn, not a blank page


def test_chart_data():
    import numpy as np

    from rustorch_tools.analytics.plots import drift_chart, line_chart

    c = line_chart("loss", [("a", np.arange(5.0), np.array([1.0, 2.0, np.nan, 4.0, 5.0]))])
    assert '"y":[1.0,2.0,null,4.0,5.0]' in c.html  # NaN leaves a gap
    assert line_chart("x", [("a", np.arange(3.0), np.full(3, np.nan))]).empty
    assert line_chart("x", [("a", np.arange(3.0), np.array([1e-4, 1.0, 10.0]))]).log_y
    d = drift_chart("acc", [{"x": 1000.0 + 3600 * i, "y": 0.9 + i / 100, "label": f"r{i}"}
                            for i in range(5)], 0.92, higher_is_better=True)
    assert [p["bad"] for p in d.points] == [True, True, False, False, False]
    assert "threshold 0.92" in d.html and "past threshold" in d.html
    d = drift_chart("loss", [{"x": 0.0, "y": 1.0, "label": "a"}, {"x": 1.0, "y": 3.0, "label": "b"}],
                    2.0, higher_is_better=False)
    assert [p["bad"] for p in d.points] == [False, True]
