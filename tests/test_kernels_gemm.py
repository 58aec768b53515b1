"""The GEMM kernels against ATen on CPU tensors, through the test op library
(torch.ops.rustorch_kernels): block edges, strided and transposed operands, alpha/beta,
out= aliasing, and the portable scalar micro-kernel. Device-level tests: test_ops_gemm.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import testing_ext
import torch

import rustorch_device  # noqa: F401

testing_ext.load()
K = torch.ops.rustorch_kernels
DTYPES = [torch.float32, torch.float64]


def tol(dtype: torch.dtype) -> dict:
    return (
        {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-10}
    )


def operand(rows: int, cols: int, layout: str, dtype: torch.dtype) -> torch.Tensor:
    """A rows x cols matrix stored row-major, column-major (transposed view) or as a strided slice."""
    if layout == "t":
        return torch.randn(cols, rows, dtype=dtype).t()
    if layout == "slice":
        return torch.randn(rows * 2, cols * 3, dtype=dtype)[::2, 1::3]
    return torch.randn(rows, cols, dtype=dtype)


# Sizes around the micro-tile (6x16), KC (256) and MC (252) edges, plus degenerate ones.
SHAPES = [
    (1, 1, 1),
    (5, 3, 7),
    (6, 16, 16),
    (7, 17, 15),
    (13, 257, 33),
    (253, 300, 40),
    (64, 600, 130),
    (1, 1000, 1),
    (40, 2, 300),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize(
    "la,lb", [("n", "n"), ("t", "n"), ("n", "t"), ("t", "t"), ("slice", "slice")]
)
def test_mm_matches_aten(dtype, m, k, n, la, lb):
    torch.manual_seed(m * 7 + k * 3 + n)
    a, b = operand(m, k, la, dtype), operand(k, n, lb, dtype)
    torch.testing.assert_close(K.mm(a, b), a @ b, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_addmm_alpha_beta_broadcast(dtype):
    a, b = torch.randn(9, 20, dtype=dtype), torch.randn(20, 17, dtype=dtype)
    for bias in (
        torch.randn(9, 17, dtype=dtype),
        torch.randn(17, dtype=dtype),
        torch.randn(9, 1, dtype=dtype),
    ):
        for beta, alpha in ((1, 1), (0.5, -2.0), (0, 3.0), (2.0, 0)):
            expect = torch.addmm(bias, a, b, beta=beta, alpha=alpha)
            torch.testing.assert_close(
                K.addmm(bias, a, b, beta=beta, alpha=alpha), expect, **tol(dtype)
            )


def test_beta_zero_ignores_nan_in_self():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    bias = torch.full((8, 8), float("nan"))
    assert not K.addmm(bias, a, b, beta=0).isnan().any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_k_gives_beta_self(dtype):
    a, b = torch.randn(4, 0, dtype=dtype), torch.randn(0, 5, dtype=dtype)
    bias = torch.randn(4, 5, dtype=dtype)
    torch.testing.assert_close(K.mm(a, b), torch.zeros(4, 5, dtype=dtype))
    torch.testing.assert_close(K.addmm(bias, a, b, beta=0.5), bias * 0.5)


def test_out_variants_resize_transposed_and_aliased_out():
    a, b, bias = torch.randn(30, 40), torch.randn(40, 20), torch.randn(30, 20)
    out = torch.empty(0)
    K.mm.out(a, b, out=out)
    torch.testing.assert_close(out, a @ b, **tol(torch.float32))
    out_t = torch.empty(20, 30).t()  # column-major out is written in place through its strides
    K.addmm.out(bias, a, b, beta=0.5, out=out_t)
    torch.testing.assert_close(out_t, torch.addmm(bias, a, b, beta=0.5), **tol(torch.float32))
    big = torch.zeros(60, 60)
    K.mm.out(a, b, out=big[::2, ::3])  # neither stride is 1: the generic tile store
    torch.testing.assert_close(big[::2, ::3], a @ b, **tol(torch.float32))
    assert big[1::2].abs().sum() == 0 and big[:, 1::3].abs().sum() == 0
    sq = torch.randn(16, 16)
    expect = sq @ sq
    K.mm.out(sq, sq, out=sq)  # out aliases both inputs
    torch.testing.assert_close(sq, expect, **tol(torch.float32))
    expect = torch.addmm(bias, a, b)
    K.addmm.out(bias, a, b, out=bias)  # out is self: in place
    torch.testing.assert_close(bias, expect, **tol(torch.float32))


def test_errors():
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        K.mm(torch.randn(3, 4), torch.randn(5, 6))
    with pytest.raises(RuntimeError, match="same dtype"):
        K.mm(torch.randn(3, 4), torch.randn(4, 6, dtype=torch.float64))
    with pytest.raises(NotImplementedError, match="float32 and float64"):
        K.mm(torch.ones(3, 4, dtype=torch.int64), torch.ones(4, 6, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="batch2"):
        K.bmm(torch.randn(2, 3, 4), torch.randn(3, 4, 5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "batch,m,k,n", [(1, 5, 6, 7), (7, 33, 20, 18), (3, 100, 300, 70), (0, 3, 3, 3)]
)
def test_bmm_and_baddbmm(dtype, batch, m, k, n):
    x = torch.randn(batch, k, m, dtype=dtype).transpose(1, 2)
    y = torch.randn(batch, k, n, dtype=dtype)
    torch.testing.assert_close(K.bmm(x, y), torch.bmm(x, y), **tol(dtype))
    z = torch.randn(batch, m, n, dtype=dtype)
    torch.testing.assert_close(
        K.baddbmm(z, x, y, beta=0.25, alpha=-1.5),
        torch.baddbmm(z, x, y, beta=0.25, alpha=-1.5),
        **tol(dtype),
    )


# Small-M GEMMs read a B with unit column stride in place (gemm.h, "Small M"), with a packed
# partial last panel when N % 16 != 0. Same FMAs in the same order as the packed path, so the
# results must be identical, not just close.
DIRECT_CASES = [
    # (m, k, n, layout of B)
    (32, 1024, 256, "n"),   # an LSTM step's input gradient: g . W
    (7, 300, 33, "n"),      # two K blocks, a partial last B panel
    (128, 40, 70, "n"),     # the largest direct M, rows past m in the last A panel
    (1, 513, 16, "n"),
    (32, 256, 1024, "t"),   # x . W^T: packed
    (5, 64, 200, "slice"),  # neither stride of B is 1: packed
    (129, 50, 80, "n"),     # just past the direct limit: packed
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n,lb", DIRECT_CASES)
def test_direct_paths_match_packed_bit_for_bit(dtype, m, k, n, lb):
    torch.manual_seed(m + k + n)
    a, b = torch.randn(m, k, dtype=dtype), operand(k, n, lb, dtype)
    direct = K.mm_packing(a, b, False)
    assert torch.equal(direct, K.mm_packing(a, b, True))
    torch.testing.assert_close(direct, a @ b, **tol(dtype))
    # Transposed A, and B as a row slice (rows farther apart than n).
    at = torch.randn(k, m, dtype=dtype).t()
    assert torch.equal(K.mm_packing(at, b, False), K.mm_packing(at, b, True))
    b = torch.randn(k, n + 5, dtype=dtype)[:, 3 : 3 + n]
    assert torch.equal(K.mm_packing(at, b, False), K.mm_packing(at, b, True))


def test_direct_paths_do_not_depend_on_thread_count():
    torch.manual_seed(0)
    a, w = torch.randn(32, 256), torch.randn(1024, 256)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [K.mm(a, w.t()), K.mm(a @ w.t(), w)]
        torch.set_num_threads(2)
        two = [K.mm(a, w.t()), K.mm(a @ w.t(), w)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(x, y) for x, y in zip(one, two, strict=True))


SCALAR_CHECK = """
import torch, rustorch_device, testing_ext
testing_ext.load()
K = torch.ops.rustorch_kernels
assert K.gemm_config(torch.float32).startswith("scalar"), K.gemm_config(torch.float32)
for dt in (torch.float32, torch.float64):
    for m, k, n in [(1, 1, 1), (9, 300, 21), (70, 20, 5)]:
        a, b = torch.randn(m, k, dtype=dt), torch.randn(n, k, dtype=dt).t()
        torch.testing.assert_close(K.mm(a, b), a @ b, atol=1e-4, rtol=1e-4)
print("ok")
"""


def test_scalar_microkernel_in_subprocess():
    env = dict(
        os.environ,
        RUSTORCH_ISA="scalar",
        PYTHONPATH=os.pathsep.join(str(p) for p in Path(__file__).resolve().parents[:2]),
    )
    res = subprocess.run(
        [sys.executable, "-c", SCALAR_CHECK], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]
