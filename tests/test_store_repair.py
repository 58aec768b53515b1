"""Store repair primitives: the torn-line rule, byte conservation, appends racing a rewrite."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustorch_tools.store import atomic, jsonl, repair

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8)
_ROWS = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "_crc"),
                        _VALUES, min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(_ROWS, st.data())
def test_every_proper_prefix_of_a_line_is_torn_and_the_line_is_not(row, data):
    line = jsonl.encode_row(row)
    assert not jsonl.is_torn_fragment(line)
    assert not jsonl.is_torn_fragment(line[:-1])  # whole line, newline missing: not a tear
    cut = data.draw(st.integers(1, len(line) - 2))
    assert jsonl.is_torn_fragment(line[:cut])
    assert jsonl.is_torn_fragment(line[:cut] + b"\n")


@pytest.mark.parametrize("line", [
    b"", b"\n", b"x", b"garbage\n", b" {", b'{ "a":1', b'{"a":1}', b'{"a":1}\n',
    b'{"a":01', b'{"a":1}{', b'{"a":tru3', b'{"a":"\x01', b'{"a":"\\q', b'{"a":\xff',
    b'{"a":1,"_crc":"00000000"}\n',  # complete, wrong CRC: damage kept as evidence
    b'{"a":1,"_crc":"00000000"',  # died before the closing brace: a tear
])
def test_what_is_not_a_torn_line(line):
    expected = line == b'{"a":1,"_crc":"00000000"'
    assert jsonl.is_torn_fragment(line) is expected


def test_a_cut_multibyte_character_at_the_end_is_still_a_tear():
    line = jsonl.encode_row({"name": "héllo"})
    at = line.index("é".encode()) + 1
    assert jsonl.is_torn_fragment(line[:at])
    assert not jsonl.is_torn_fragment(line[:at] + b"x")  # broken UTF-8 inside: damage


def test_cut_torn_lines_refuses_a_line_that_is_not_torn(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = jsonl.encode_row({"step": 0, "time": 1.0})
    path.write_bytes(good + b'{"step":1\n' + good)
    with pytest.raises(repair.RepairConflict):
        repair.cut_torn_lines(path, [1])
    assert path.read_bytes() == good + b'{"step":1\n' + good
    assert list(tmp_path.glob("*.orphan")) == []
    done = repair.cut_torn_lines(path, [2])
    assert path.read_bytes() == good * 2 and done["kept"] == 2
    assert (tmp_path / done["orphan"]).read_bytes() == b'{"step":1\n'


def test_cut_torn_lines_counts_lines_at_newlines_only(tmp_path):
    assert repair.split_lines(b"a\rb\nc") == [b"a\rb\n", b"c"]
    assert repair.split_lines(b"a\n\nb\n") == [b"a\n", b"\n", b"b\n"]
    assert repair.split_lines(b"") == []
    path = tmp_path / "events.jsonl"
    good = jsonl.encode_row({"time": 1.0, "event": "created"})
    data = b"bad\rline\n" + b'{"time":1.0,"ev\n' + good
    path.write_bytes(data)
    done = repair.cut_torn_lines(path, [2])
    assert path.read_bytes() == b"bad\rline\n" + good
    assert (tmp_path / done["orphan"]).read_bytes() == b'{"time":1.0,"ev\n'


def test_append_waiting_on_the_lock_goes_to_the_rewritten_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"old\n")
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what repair holds while it rewrites the file
    writer = threading.Thread(target=atomic.append_line, args=(path, b"new row\n"))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # blocked on the lock of the old inode
    atomic.atomic_write_bytes(path, b"rewritten\n")
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    writer.join(10)
    assert path.read_bytes() == b"rewritten\nnew row\n"  # not lost in the unlinked inode


def test_set_aside_never_replaces_and_keeps_the_bytes(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    tmp = tmp_path / "checkpoints" / ".ckpt-1.pt.tmp-9-aa"
    tmp.write_bytes(b"partial")
    done = repair.set_aside(tmp_path, "checkpoints/.ckpt-1.pt.tmp-9-aa")
    assert not tmp.exists() and (tmp_path / done["orphan"]).read_bytes() == b"partial"
    (tmp_path / "not-temp").write_bytes(b"x")
    with pytest.raises(repair.RepairConflict):
        repair.set_aside(tmp_path, "not-temp")
