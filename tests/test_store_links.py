"""Run files reached through links are refused, never written through or read from outside."""

from __future__ import annotations

import json
import os

import pytest

import rustorch_tools
from rustorch_tools.errors import LinkedFileError
from rustorch_tools.store import atomic, layout, runs


def test_append_line_refuses_a_symlink(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    link = tmp_path / "metrics.jsonl"
    link.symlink_to(outside)
    with pytest.raises(LinkedFileError, match="symbolic link"):
        atomic.append_line(link, b"x\n")
    assert outside.read_bytes() == b"precious\n"


def test_append_line_refuses_a_dangling_symlink(tmp_path):
    target = tmp_path / "would-be-created"
    (tmp_path / "events.jsonl").symlink_to(target)
    with pytest.raises(LinkedFileError):
        atomic.append_line(tmp_path / "events.jsonl", b"x\n")
    assert not target.exists()


def test_append_line_refuses_a_hard_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    os.link(outside, tmp_path / "metrics.jsonl")
    with pytest.raises(LinkedFileError, match="hard links"):
        atomic.append_line(tmp_path / "metrics.jsonl", b"x\n")
    assert outside.read_bytes() == b"precious\n"


def test_logging_into_a_linked_metrics_file_fails_clearly(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"")
    run = rustorch_tools.start_run(tmp_path / "runs", name="r")
    (run.dir / layout.METRICS).unlink(missing_ok=True)
    (run.dir / layout.METRICS).symlink_to(outside)
    with pytest.raises(LinkedFileError):
        run.log_metrics({"a": 1.0}, step=0)
        run.flush()
    assert outside.read_bytes() == b""


def _run_json_link(tmp_path, target):
    d = tmp_path / "runs" / "r1"
    d.mkdir(parents=True)
    (d / layout.RUN_JSON).symlink_to(target)
    return d


def test_read_run_raw_refuses_a_link_outside_runs_dir(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"run_id": "r1"}))
    d = _run_json_link(tmp_path, secret)
    with pytest.raises(LinkedFileError, match="outside"):
        runs.read_run_raw(d)
    with pytest.raises(LinkedFileError):
        runs.read_run(d)


def test_read_run_raw_refuses_a_relative_link_escaping(tmp_path):
    (tmp_path / "secret.json").write_text("{}")
    d = _run_json_link(tmp_path, "../../secret.json")
    with pytest.raises(LinkedFileError):
        runs.read_run_raw(d)


def test_read_run_raw_follows_a_link_inside_runs_dir(tmp_path):
    with rustorch_tools.start_run(tmp_path / "runs", run_id="r0") as run:
        run.log_params({"a": 1})
    d = _run_json_link(tmp_path, run.dir / layout.RUN_JSON)
    assert runs.read_run_raw(d)["run_id"] == "r0"


def test_read_run_raw_does_not_hang_on_a_fifo(tmp_path):
    d = tmp_path / "runs" / "r1"
    d.mkdir(parents=True)
    os.mkfifo(d / layout.RUN_JSON)
    with pytest.raises(rustorch_tools.errors.CorruptRunError, match="not a regular file"):
        runs.read_run_raw(d)
