"""The CRC32 that a store line must carry, computed from the CRC of the whole line.

A line is `body_open + ',"_crc":"hhhhhhhh"}'`, and its `_crc` is CRC32(`body_open + "}"`).
Taking the CRC of `line[:-19]` costs a copy of every line; the CRC of the whole line (no
copy) holds the same information: CRC32 is affine over GF(2), so the register after
`body_open` follows from the whole line's CRC and its 19 known tail bytes, and from it the
CRC of `body_open + "}"`. That is a few table look-ups per line, vectorized over all lines:

    reg(body_open + tail) = A19(reg(body_open)) ^ U0(tail)      (A_k: k zero bytes, linear)
    reg(body_open + "}")  = A1(reg(body_open)) ^ U0("}")
    => reg(body_open + "}") = K(reg(line) ^ U0(tail)) ^ U0("}"),  K = A1 o A19^-1 = A18^-1

with U0 the register update from 0 (linear in the data). `tests/test_store_line_crc.py`
checks the result against zlib on random lines.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import cache

import numpy as np

_M = 0xFFFFFFFF
TAIL = b',"_crc":"00000000"}'  # the tail with its 8 hex digits zeroed
_HEX_AT = 9  # offset of the first hex digit in the tail


def _update(register: int, data: bytes) -> int:
    """The CRC register after `data`, starting from `register` (zlib inverts before/after)."""
    return ~zlib.crc32(data, ~register & _M) & _M


def _step_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        table.append(c)
    return table


def _unshift_zeros(register: int, k: int, table: list[int], by_top: dict[int, int]) -> int:
    """The register that `k` zero bytes turn into `register` (A_k inverted): the top byte of
    a table entry names its index, which undoes one step."""
    for _ in range(k):
        idx = by_top[register >> 24]
        register = (((register ^ table[idx]) << 8) & _M) | idx
    return register


@cache  # built on first use (~10 ms), not when governance is imported
def _tables() -> tuple[np.ndarray, np.ndarray, int, int]:
    table = _step_table()
    by_top = {entry >> 24: i for i, entry in enumerate(table)}
    assert len(by_top) == 256  # CRC32's table has distinct top bytes: each step is invertible
    # K = A18^-1 as four byte tables (it is linear): K(v) = K0[v & 255] ^ K1[..] ^ K2 ^ K3.
    k_tables = np.array([[_unshift_zeros(b << (8 * i), len(TAIL) - 1, table, by_top)
                          for b in range(256)] for i in range(4)], np.uint32)
    # U0(tail) = U0(tail with zero digits) ^ the contribution of each byte of the CRC value
    # (two hex digits each) at its place.
    blank = bytearray(TAIL.replace(b"0", b"\0"))
    value_tables = np.zeros((4, 256), np.uint32)
    for i in range(4):  # i = 0: the most significant byte, the first two digits
        for b in range(256):
            tail = bytearray(blank)
            tail[_HEX_AT + 2 * i:_HEX_AT + 2 * i + 2] = b"%02x" % b
            value_tables[i, b] = _update(0, bytes(tail)) ^ _update(0, bytes(blank))
    tail_const = _update(0, bytes(blank))
    return k_tables, value_tables, tail_const, _update(0, b"}")




def body_crcs(line_crcs: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """CRC32(`line[:-19] + b"}"`) of each line from `line_crcs` (zlib.crc32 of each whole
    line, without its newline, as uint32) and `stored` (uint32: the CRC value whose lowercase
    hex digits end each line). The rest of the tail must be `,"_crc":"` and `"}` (checked by
    the caller)."""
    k_tables, value_tables, tail_const, brace = _tables()
    v = ((~line_crcs) ^ np.uint32(tail_const) ^ value_tables[0][stored >> 24]
         ^ value_tables[1][(stored >> 16) & 255] ^ value_tables[2][(stored >> 8) & 255]
         ^ value_tables[3][stored & 255])
    k = (k_tables[0][v & 255] ^ k_tables[1][(v >> 8) & 255] ^ k_tables[2][(v >> 16) & 255]
         ^ k_tables[3][v >> 24])
    return ~(k ^ np.uint32(brace))


def whole_line_crcs(lines: Sequence[bytes]) -> np.ndarray:
    """zlib.crc32 of every line (no copy of any line)."""
    return np.fromiter(map(zlib.crc32, lines), np.uint32, len(lines))
