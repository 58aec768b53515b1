"""store.line_crc: the CRC of `line[:-19] + "}"` from the whole line's CRC equals zlib's."""

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rustorch_tools.store import line_crc


def _line(body: bytes, stored: int) -> bytes:
    return body + b',"_crc":"%08x"}' % stored


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), st.integers(0, 2**32 - 1)), min_size=1, max_size=20))
def test_body_crcs_equal_zlib(items):
    lines = [_line(body, stored) for body, stored in items]
    stored = np.array([s for _, s in items], np.uint32)
    got = line_crc.body_crcs(line_crc.whole_line_crcs(lines), stored)
    assert got.tolist() == [zlib.crc32(line[:-19] + b"}") for line in lines]


def test_a_line_with_its_true_crc_matches_and_a_changed_byte_does_not():
    body = b'{"step":1,"time":2.5,"loss":0.25'
    good = _line(body, zlib.crc32(body + b"}"))
    bad = _line(body.replace(b"0.25", b"0.26"), zlib.crc32(body + b"}"))
    stored = np.array([zlib.crc32(body + b"}")] * 2, np.uint32)
    got = line_crc.body_crcs(line_crc.whole_line_crcs([good, bad]), stored)
    assert (got == stored).tolist() == [True, False]
