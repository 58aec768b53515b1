"""rustorch_tools.store.jsonl_bulk: many rows at once, byte for byte the row encoder's lines."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustorch_tools.store import jsonl, jsonl_bulk

metric_names = st.text(min_size=1, max_size=12,
                       alphabet=st.characters(codec="utf-8") | st.sampled_from('%s,:"{}\\')).filter(
    lambda k: not k.startswith("_") and k not in ("step", "time", "rank"))
finite = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(-(2**63), 2**63 - 1)


def _row_by_row(head, when, steps, names, columns):
    enc = jsonl.NumberRowEncoder(head)
    return b"".join(enc.encode(int(s), when, {n: c[i].item() if c.dtype.kind != "b" else int(c[i])
                                              for n, c in zip(names, columns, strict=True)})
                    for i, s in enumerate(steps))


def _bulk(head, when, steps, names, columns):
    texts = [jsonl_bulk.column_text(c) for c in columns]
    assert all(t is not None for t in texts)
    return jsonl_bulk.encode_columns(head, when, jsonl_bulk.column_text(steps), names, texts)


@settings(max_examples=40, deadline=None)
@given(st.data(), st.lists(metric_names, min_size=1, max_size=5, unique=True),
       st.integers(1, 40), st.floats(0, 2e9), st.one_of(st.none(), st.integers(0, 64)))
def test_bulk_lines_equal_row_lines(data, names, n, when, rank):
    head = {} if rank is None else {"rank": rank}
    steps = np.array(sorted(data.draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n))))
    columns = []
    for _ in names:
        kind = data.draw(st.sampled_from(["f8", "f4", "i8", "u1", "b"]))
        if kind == "f8":
            col = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)), np.float64)
        elif kind == "f4":
            col = np.array(data.draw(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=n,
                                              max_size=n)), np.float32)
        elif kind == "i8":
            col = np.array(data.draw(st.lists(int64, min_size=n, max_size=n)), np.int64)
        elif kind == "u1":
            col = np.array(data.draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)), np.uint8)
        else:
            col = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        columns.append(col)
    expect = _row_by_row(head, when, steps, names, columns)
    assert _bulk(head, when, steps, names, columns) == expect
    for line in expect.splitlines(keepends=True):
        jsonl.decode_line(line)  # every line carries a valid CRC


def test_large_calls_are_encoded_in_pieces(monkeypatch):
    steps = np.arange(1000)
    columns = [steps * 0.001, -steps, np.sin(steps)]
    names = ["a", "b%", "ç"]
    whole = _bulk({"rank": 1}, 5.5, steps, names, columns)
    monkeypatch.setattr(jsonl_bulk, "ROWS_PER_PIECE", 7)
    assert _bulk({"rank": 1}, 5.5, steps, names, columns) == whole
    assert whole == _row_by_row({"rank": 1}, 5.5, steps, names, columns)


def test_columns_that_cannot_take_the_bulk_path():
    assert jsonl_bulk.column_text(np.array([1.0, np.nan])) is None
    assert jsonl_bulk.column_text(np.array([np.inf])) is None
    assert jsonl_bulk.column_text(np.array(["a"])) is None
    assert jsonl_bulk.column_text(np.array([2**64 - 1], np.uint64)) is None
    assert jsonl_bulk.column_text(np.array([2**63 - 1], np.uint64)) == b"9223372036854775807"
    with pytest.raises(ValueError, match="differ in length"):
        jsonl_bulk.encode_columns({}, 1.0, b"0,1", ["x"], [b"1.0"])
