"""Kernels give bit-identical results at 1 and 2 threads (fixed blocking and reduction order)."""

from collections.abc import Callable

import pytest
import testing_ext
import torch

import rustorch_device  # noqa: F401

testing_ext.load()
K = torch.ops.rustorch_kernels


def at_threads(n: int, fn: Callable[[], object]) -> object:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def assert_bitwise_equal(a: object, b: object) -> None:
    if isinstance(a, tuple | list):
        for x, y in zip(a, b, strict=True):
            assert_bitwise_equal(x, y)
    elif a is None:
        assert b is None
    else:
        assert torch.equal(a, b), (a - b).abs().max()


def same_at_1_and_2_threads(fn: Callable[[], object]) -> None:
    assert_bitwise_equal(at_threads(1, fn), at_threads(2, fn))


# --- GEMM and conv (kernels/gemm*, aten/native/conv*) ----------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "m,k,n", [(300, 700, 200), (64, 9216, 128), (64, 128, 9216), (128, 64, 9216)]
)
def test_mm_deterministic(dtype, m, k, n):
    torch.manual_seed(0)
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype).t()
    bias = torch.randn(n, dtype=dtype)
    same_at_1_and_2_threads(lambda: K.mm(a, b))
    same_at_1_and_2_threads(lambda: K.addmm(bias, a, b, beta=0.5, alpha=2.0))


def test_bmm_deterministic():
    torch.manual_seed(0)
    x, y = torch.randn(6, 100, 80), torch.randn(6, 80, 90)
    same_at_1_and_2_threads(lambda: K.bmm(x, y))


@pytest.mark.parametrize(
    "n,c,hw,m,groups",
    [(16, 32, 14, 64, 1), (3, 8, 20, 8, 2), (1, 16, 16, 16, 1), (4, 16, 20, 16, 16)],
)
def test_conv2d_deterministic(n, c, hw, m, groups):
    torch.manual_seed(0)
    x, w, b = torch.randn(n, c, hw, hw), torch.randn(m, c // groups, 3, 3), torch.randn(m)
    args = ([1, 1], [1, 1], [1, 1], groups)
    out = K.conv2d(x, w, b, *args)
    go = torch.randn_like(out)
    same_at_1_and_2_threads(lambda: K.conv2d(x, w, b, *args))
    same_at_1_and_2_threads(lambda: K.conv2d_backward(go, x, w, *args, [True, True, True]))
