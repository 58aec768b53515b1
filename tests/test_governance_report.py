"""Compliance reports: content, escaping of hostile names, self-contained HTML, Markdown."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from click.testing import CliRunner
from support.governance_synth import make_run

from rustorch_tools.cli import cli
from rustorch_tools.governance.quarantine import quarantine_runs
from rustorch_tools.governance.report import md_escape, render_html, render_markdown
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store.atomic import atomic_write_json
from rustorch_tools.store.audit import verify

EVIL = '<script>alert("x")</script>'
EVIL_FILE = "<img src=x onerror=alert(1)>.txt"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def hostile_tree(root):
    make_run(root, "clean")
    d = make_run(root, "broken")
    with open(d / "metrics.jsonl", "ab") as fh:
        fh.write(b"junk\n")
    quarantine_runs(root)
    d = make_run(root, "evil")
    doc = json.loads((d / "run.json").read_text())
    atomic_write_json(d / "run.json", {**doc, "run_id": "x" + EVIL.replace("<", "")[:20],
                                       "name": EVIL * 10})
    (d / EVIL_FILE).write_text("x")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(a for a, _ in attrs)


def test_html_report_is_escaped_and_self_contained(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    hostile_tree(runs)
    out = tmp_path / "report.html"
    res = invoke("validate", str(runs), "--report", str(out))
    assert res.exit_code == 1
    html = out.read_text()
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not {"src", "href", "onerror"} & set(parser.attrs)  # nothing loaded from outside
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in html
    for needle in ("Summary", "Findings by run", "Quarantine", "Audit trail", "RT504",
                   "RT106", "broken", "Hash chain verified"):
        assert needle in html, needle
    assert "<style>" in html


def test_markdown_report(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    hostile_tree(runs)
    out = tmp_path / "report.md"
    assert invoke("validate", str(runs), "--report", str(out)).exit_code == 1
    md = out.read_text()
    assert md.startswith("# Compliance report")
    assert "## Quarantine" in md and "| broken |" in md and "RT504" in md
    assert not re.search(r"(?<!\\)<img", md) and "\\<img" in md
    for line in md.splitlines():
        if line.startswith("|"):  # no table row broken by an unescaped pipe
            assert len(re.findall(r"(?<!\\)\|", line)) in (5, 7, 9), line


def test_md_escape():
    assert md_escape("a|b\nc<d>") == "a\\|b c\\<d\\>"
    assert md_escape(None) == ""


def test_broken_audit_chain_shows_in_report(tmp_path):
    make_run(tmp_path, "r")
    invoke("validate", str(tmp_path))
    invoke("validate", str(tmp_path))
    log = tmp_path / ".audit" / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[1])
    report = validate_runs(tmp_path, jobs=1)
    html = render_html(report, verify(tmp_path), 1)
    assert "BROKEN" in html
    assert "BROKEN" in render_markdown(report, verify(tmp_path), 1)


def test_clean_report(tmp_path):
    make_run(tmp_path, "r")
    report = validate_runs(tmp_path, jobs=1)
    html = render_html(report, verify(tmp_path), 0)
    assert "No findings." in html and "clean" in html
