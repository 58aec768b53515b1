"""validate reads each recorded JSONL file once: the manifest's digest of it is taken from the
same reads as the line checks, and tampering is still found."""

from __future__ import annotations

import rustorch_tools
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store import jsonl, manifest


def _finished(root):
    with rustorch_tools.start_run(root, name="r") as run:
        for i in range(50):
            run.log_metrics({"loss": 0.25 + i, "acc": i / 50}, step=i)
    return run.dir


def _codes(root):
    return {f.code for f in validate_runs(root, jobs=1).all_findings()}


def test_an_intact_run_is_not_hashed_twice(tmp_path, monkeypatch):
    _finished(tmp_path)
    calls = []
    real = manifest.measure_log
    monkeypatch.setattr(manifest, "measure_log", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert _codes(tmp_path) == set()
    assert calls == []


def test_a_same_length_edit_with_a_valid_crc_is_still_found(tmp_path):
    d = _finished(tmp_path)
    metrics = d / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    row = jsonl.decode_line(lines[7])
    row["loss"] = row["loss"] + 1  # 7.25 -> 8.25: same length, a valid CRC, only the digest tells
    edited = jsonl.encode_row(row)
    assert len(edited) == len(lines[7])
    metrics.write_bytes(b"".join([*lines[:7], edited, *lines[8:]]))
    assert "RT211" in _codes(tmp_path)


def test_rows_appended_after_the_record_keep_the_prefix_intact(tmp_path):
    d = _finished(tmp_path)
    with open(d / "metrics.jsonl", "ab") as fh:
        fh.write(jsonl.encode_row({"step": 60, "time": 1.0, "loss": 1.0}))
    assert not _codes(tmp_path) & {"RT210", "RT211"}
