"""rustorch_tools.store.jsonl: the self-checking line format."""

import json
import math
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustorch_tools.errors import CorruptLineError
from rustorch_tools.store import jsonl


def test_line_format_matches_the_doc():
    line = jsonl.encode_row({"step": 12, "time": 1.5, "loss": 0.25})
    body = b'{"step":12,"time":1.5,"loss":0.25}'
    assert line == b'{"step":12,"time":1.5,"loss":0.25,"_crc":"%08x"}\n' % zlib.crc32(body)
    assert json.loads(line)["_crc"] == f"{zlib.crc32(body):08x}"
    assert jsonl.decode_line(line) == {"step": 12, "time": 1.5, "loss": 0.25}


def test_nonfinite_values_are_kept_and_flagged():
    line = jsonl.encode_row({"step": 1, "time": 2.0, "a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.0})
    raw = jsonl.decode_line(line)
    assert raw["a"] == "nan" and raw["b"] == "inf" and raw["c"] == "-inf"
    assert raw["_nonfinite"] == ["a", "b", "c"]
    row = jsonl.restore_nonfinite(raw)
    assert math.isnan(row["a"]) and row["b"] == math.inf and row["c"] == -math.inf and row["d"] == 1.0
    assert b"NaN" not in line and b"Infinity" not in line


@pytest.mark.parametrize("row", [{}, {"_crc": "x"}, {"a": object()}, {"a": [math.nan]}])
def test_encode_refuses_bad_rows(row):
    with pytest.raises(ValueError):
        jsonl.encode_row(row)


def test_every_single_byte_flip_is_detected():
    line = jsonl.encode_row({"step": 3, "time": 10.0, "loss": 0.123456})
    for i in range(len(line) - 1):  # every byte but the newline
        for bit in (0x01, 0x10):
            bad = bytearray(line)
            bad[i] ^= bit
            try:
                row = jsonl.decode_line(bytes(bad))
            except CorruptLineError:
                continue
            pytest.fail(f"flip at byte {i} went undetected: {row}")


@pytest.mark.parametrize(
    "line,reason",
    [
        (b'{"a":1}\n', "missing"),
        (b'{"a":1,"_crc":"00000000"}\n', "CRC mismatch"),
        (b"[1,2]\n", "missing"),
        (b'[1,"_crc":"%08x"}\n' % zlib.crc32(b"[1}"), "bad JSON"),
    ],
)
def test_decode_reasons(line, reason):
    with pytest.raises(CorruptLineError, match=reason):
        jsonl.decode_line(line)


def test_scan_reports_offsets_corruption_and_incomplete_tail(tmp_path):
    good1 = jsonl.encode_row({"step": 0, "time": 1.0, "x": 1})
    good2 = jsonl.encode_row({"step": 1, "time": 2.0, "x": 2})
    path = tmp_path / "m.jsonl"
    path.write_bytes(good1 + b"garbage\n" + b"\n" + good2 + good1[:10])
    results = list(jsonl.scan(path))
    assert [r.lineno for r in results] == [1, 2, 3, 4, 5]
    assert [r.offset for r in results] == [0, len(good1), len(good1) + 8, len(good1) + 9, len(good1) + 9 + len(good2)]
    assert results[0].row == {"step": 0, "time": 1.0, "x": 1} and results[0].error is None
    assert results[1].row is None and results[1].error and results[1].complete
    assert results[2].row is None and results[2].error
    assert results[3].row["x"] == 2
    assert results[4].complete is False and results[4].row is None
    assert [r["x"] for r in jsonl.iter_valid_rows(path)] == [1, 2]
    assert list(jsonl.scan(tmp_path / "absent")) == []


finite = st.floats(allow_nan=True, allow_infinity=True)
values = st.one_of(finite, st.integers(-(2**62), 2**62), st.text(max_size=20), st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=30).filter(lambda k: not k.startswith("_")), values, min_size=1))
def test_roundtrip(row):
    restored = jsonl.restore_nonfinite(jsonl.decode_line(jsonl.encode_row(row)))
    restored.pop("_nonfinite", None)
    assert set(restored) == set(row)
    for key, value in row.items():
        got = restored[key]
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value and type(got) is type(value)


metric_names = st.text(min_size=1, max_size=20).filter(lambda k: not k.startswith("_") and k not in ("step", "time", "rank"))
plain_numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(metric_names, plain_numbers, min_size=1), st.integers(0, 2**40),
       st.floats(0, 2e9), st.one_of(st.none(), st.integers(0, 64)))
def test_fast_number_encoder_matches_encode_row(metrics, step, when, rank):
    head = {} if rank is None else {"rank": rank}
    fast = jsonl.NumberRowEncoder(head)
    expect = jsonl.encode_row({"step": step, "time": when, **head, **metrics})
    assert fast.encode(step, when, metrics) == expect
    assert fast.encode(step, when, metrics) == expect  # cached prefixes
