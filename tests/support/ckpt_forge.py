"""Rewrite a format-2 checkpoint file the way a forger would: change its header or its tensor
bytes, then recompute the digest tails chosen (the others keep their old bytes), so that only
the reader's checks, not a stale digest, can refuse the result."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3

SHA_KEY, B3_KEY = "__rustorch_sha256__", "__rustorch_blake3__"


def reseal(path: Path, mutate_header: Callable[[dict[str, Any]], None] | None = None,
           mutate_body: Callable[[bytearray], None] | None = None,
           recompute: tuple[str, ...] = ("sha256", "blake3"), place_tails: bool = True) -> None:
    """`place_tails`: point the two digest entries at the tails (False keeps the offsets
    `mutate_header` left)."""
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + n])
    body = bytearray(data[8 + n : -64])  # the tensors, without the two 32-byte tails
    old_sha, old_b3 = data[-64:-32], data[-32:]
    if mutate_header:
        mutate_header(header)
    if mutate_body:
        mutate_body(body)
    size = len(body)
    if place_tails and isinstance(header.get(SHA_KEY), dict):
        header[SHA_KEY]["data_offsets"] = [size, size + 32]
    if place_tails and isinstance(header.get(B3_KEY), dict):
        header[B3_KEY]["data_offsets"] = [size + 32, size + 64]
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    out = struct.pack("<Q", len(head)) + head + bytes(body)
    out += hashlib.sha256(out).digest() if "sha256" in recompute else old_sha
    out += blake3.blake3(out).digest() if "blake3" in recompute else old_b3
    path.write_bytes(out)
