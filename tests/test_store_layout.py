"""rustorch_tools.store.layout and .atomic."""

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from rustorch_tools.errors import InvalidNameError
from rustorch_tools.store import atomic, layout


@pytest.mark.parametrize("run_id", ["a", "run-1", "2026.11_x", "A" * 128])
def test_valid_run_ids(run_id):
    assert layout.validate_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id", ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "-x", "a b", "A" * 129, 5, None]
)
def test_invalid_run_ids(run_id):
    with pytest.raises(InvalidNameError):
        layout.validate_run_id(run_id)


@pytest.mark.parametrize("name", ["a/b", "..", "x..y", "a\\b", "", "tab\tname", "x" * 129])
def test_invalid_names(name):
    with pytest.raises(InvalidNameError):
        layout.validate_name(name, "run name")


@pytest.mark.parametrize("name", ["", "_x", "step", "time", "rank", "a\nb", "x" * 201, 3])
def test_invalid_metric_names(name):
    with pytest.raises(InvalidNameError):
        layout.validate_metric_name(name)


def test_metric_names_are_keys_not_paths():
    assert layout.validate_metric_name("train/loss") == "train/loss"


def test_new_run_id_is_valid_and_unique():
    ids = {layout.new_run_id("my experiment/../x") for _ in range(50)}
    assert len(ids) == 50
    for run_id in ids:
        layout.validate_run_id(run_id)
        assert "/" not in run_id and ".." not in run_id


def test_iter_run_dirs_skips_reserved_and_files(tmp_path):
    for name in ("b-run", "a-run", ".quarantine", ".index", "bad name"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert [p.name for p in layout.iter_run_dirs(tmp_path)] == ["a-run", "b-run"]
    assert list(layout.iter_run_dirs(tmp_path / "absent")) == []


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.json"
    atomic.atomic_write_json(target, {"a": 1})
    atomic.atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert os.listdir(tmp_path) == ["f.json"]
    with pytest.raises(ValueError):
        atomic.atomic_write_json(target, {"a": float("nan")})
    assert target.read_text() == '{\n  "a": 2\n}\n'


def test_append_line_requires_newline(tmp_path):
    with pytest.raises(ValueError):
        atomic.append_line(tmp_path / "x", b"no newline")


def test_append_after_torn_line_keeps_new_data_intact(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"line1\npartial-torn")
    atomic.append_line(path, b"line2\n")
    assert path.read_bytes() == b"line1\npartial-torn\nline2\n"


def _appender(path: str, tag: int, n: int) -> None:
    for i in range(n):
        atomic.append_line(path, (f"{tag}:{i}:" + "x" * (i % 300) + "\n").encode())


def test_concurrent_appends_never_interleave(tmp_path):
    path = str(tmp_path / "x.jsonl")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_appender, args=(path, t, 300)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    lines = Path(path).read_bytes().split(b"\n")
    assert lines[-1] == b""
    seen = set()
    for line in lines[:-1]:
        tag, i, pad = line.decode().split(":")
        assert pad == "x" * (int(i) % 300)
        seen.add((int(tag), int(i)))
    assert seen == {(t, i) for t in range(4) for i in range(300)}
