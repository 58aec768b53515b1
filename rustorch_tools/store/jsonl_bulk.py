"""Many metric rows encoded at once, byte for byte what `jsonl.NumberRowEncoder` writes row
by row (`{"step":..,"time":..,[head..,]name:value..,"_crc":"%08x"}` lines).

Row-by-row encoding costs a Python-level step per value (a dict, a format argument, a
split piece); here no Python object is made per value. orjson writes the text of each whole
numpy column (the shortest text that round-trips, as for one row), numpy finds where each
value's text starts, and a scatter copies the values and the constant separators (the keys)
straight into their places in the output buffer. Only the CRC of each line is one C call per
line (`zlib.crc32` mapped over the lines, the `_crc` tail then undone by store.line_crc).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from . import line_crc

_CRC_HEAD = b',"_crc":"'
_CRC_TAIL = b'"}\n'
_FRAME = len(_CRC_HEAD) + 8 + len(_CRC_TAIL)  # what each line adds after its open body
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_NIBBLE_SHIFTS = np.arange(28, -1, -4, dtype=np.uint32)
ROWS_PER_PIECE = 1 << 16  # rows encoded per buffer: bounds the temporary index arrays


def column_text(values: Any) -> bytes | None:
    """The JSON texts of a 1-D numeric numpy column, comma-separated (orjson's array text
    without its brackets), or None when the column cannot take the bulk path (not numeric,
    an unsigned value beyond int64, a non-finite float). Booleans are written as 0/1, as
    log_metrics writes them."""
    kind = values.dtype.kind
    if kind == "b":
        values = values.astype(np.int64)
    elif kind in "iu":
        if kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
            return None
        values = values.astype(np.int64, copy=False)
    elif kind == "f":
        values = values.astype(np.float64, copy=False)
        if not np.isfinite(values).all():
            return None
    else:
        return None
    return orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]


def _separators(head: dict[str, int], when: float, names: list[str]) -> list[bytes]:
    """The constant text before each value of a row: before the step, then before each metric
    (the first one also carries `"time"` and the head fields)."""
    first = ',"time":' + repr(when) + "".join(f",{json.dumps(k)}:{v!r}" for k, v in head.items())
    keys = ["," + json.dumps(n, ensure_ascii=False) + ":" for n in names]
    keys[0] = first + keys[0]
    return [b'{"step":', *(k.encode() for k in keys)]


def encode_columns(head: dict[str, int], when: float, steps: bytes, names: list[str],
                   columns: list[bytes]) -> bytes:
    """The lines of n rows: `steps` and each of `columns` hold the comma-separated JSON texts
    of their n values (column_text), `names` the metric name of each column."""
    seps = _separators(head, when, names)
    texts = [steps, *columns]
    n = texts[0].count(b",") + 1
    if n <= ROWS_PER_PIECE:
        return _encode(seps, texts, n)
    out = []
    cuts = [_cut_points(t, ROWS_PER_PIECE) for t in texts]
    for piece in range(len(cuts[0]) - 1):
        part = [t[c[piece]:c[piece + 1] - 1] for t, c in zip(texts, cuts, strict=True)]
        out.append(_encode(seps, part, part[0].count(b",") + 1))
    return b"".join(out)


def _cut_points(text: bytes, every: int) -> list[int]:
    """Offsets where each run of `every` values of a comma-separated text starts, and the
    end (one past the text, as if a comma followed it)."""
    commas = np.flatnonzero(np.frombuffer(text, np.uint8) == 44)
    return [0, *(commas[every - 1::every] + 1).tolist(), len(text) + 1]


def _encode(seps: list[bytes], texts: list[bytes], n: int) -> bytes:
    arrays, lengths, starts = [], [], []
    for text in texts:
        a = np.frombuffer(text, np.uint8)
        commas = np.flatnonzero(a == 44)
        if len(commas) != n - 1:
            raise ValueError("columns differ in length")
        begin = np.empty(n, np.int64)
        begin[0] = 0
        begin[1:] = commas + 1
        end = np.empty(n, np.int64)
        end[:-1] = commas
        end[-1] = len(a)
        arrays.append(a)
        starts.append(begin)
        lengths.append(end - begin)
    k1 = len(texts)
    # Each row is 2*k1 + 1 segments: separator, value, ..., separator, value, CRC frame.
    segments = np.empty((n, 2 * k1 + 1), np.int64)
    segments[:, 0:-1:2] = [len(sep) for sep in seps]
    for j, length in enumerate(lengths):
        segments[:, 2 * j + 1] = length
    segments[:, -1] = _FRAME
    row_start = np.zeros(n + 1, np.int64)
    np.cumsum(segments.sum(axis=1), out=row_start[1:])
    out = np.empty(int(row_start[-1]), np.uint8)
    # The constant bytes (keys, CRC frame) are the same sequence in every row: one masked
    # store of that sequence repeated n times.
    constant = np.zeros(2 * k1 + 1, bool)
    constant[0::2] = True
    frame = _CRC_HEAD + b"00000000" + _CRC_TAIL
    out[np.repeat(np.tile(constant, n), segments.ravel())] = np.tile(
        np.frombuffer(b"".join(seps) + frame, np.uint8), n)
    at = row_start[:-1].copy()
    for sep, a, begin, length in zip(seps, arrays, starts, lengths, strict=True):
        at += len(sep)
        # Every byte of the column's text but the commas, moved from its token's start to
        # where that token goes in its row.
        keep = a != 44
        out[np.flatnonzero(keep) + np.repeat(at - begin, length)] = a[keep]
        at += length
    body_end = at
    # The CRC of each body + "}" from the CRC of its whole line, whose digits are still
    # "00000000" (line_crc: no slice of any line is copied).
    lines = out.tobytes().split(b"\n")
    lines.pop()
    crcs = line_crc.body_crcs(line_crc.whole_line_crcs(lines),
                                np.zeros(n, np.uint32))  # the value "00000000" spells
    digits = _HEX[(crcs[:, None] >> _NIBBLE_SHIFTS) & np.uint32(15)]
    out[(body_end + len(_CRC_HEAD))[:, None] + np.arange(8)] = digits
    return out.tobytes()
