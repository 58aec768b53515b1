"""The Philox4x32-10 stream behind rustorch's dropout masks (aten/native/dropout.cpp) against a
Python reference and Random123's known-answer vector. The AVX2 generator handles 16 and 8 blocks
at a time and the plain loop the rest, so the block counts below cover every path, and the
offset crosses 2^32 (the counter's carry into its high word)."""

import testing_ext
import torch

import rustorch_device  # noqa: F401

testing_ext.load()
K = torch.ops.rustorch_kernels

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox_block(seed: int, counter: int) -> list[int]:
    c = [counter & MASK, counter >> 32, 0, 0]
    k0, k1 = seed & MASK, seed >> 32
    for _ in range(10):
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c[3] ^ k1) & MASK, p0 & MASK]
        k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
    return c


def philox_fill(seed: int, offset: int, blocks: int) -> list[int]:
    # Seeds and offsets travel as int64 (the schema's int): reinterpret the uint64 bits.
    def signed(v: int) -> int:
        return v - (1 << 64) if v >= 1 << 63 else v

    return K.philox_fill(signed(seed), signed(offset), blocks).tolist()


def test_known_answer_vector():
    # Random123 kat_vectors: philox4x32 10, counter 0, key 0.
    assert philox_block(0, 0) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert philox_fill(0, 0, 1) == philox_block(0, 0)


def test_every_path_matches_reference():
    for seed, offset, blocks in [(0, 0, 45), (0x123456789ABCDEF0, (1 << 32) - 20, 61), (7, 3, 5)]:
        ref = [w for b in range(blocks) for w in philox_block(seed, offset + b)]
        assert philox_fill(seed, offset, blocks) == ref
