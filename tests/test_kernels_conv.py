"""conv2d forward/backward kernels against ATen on CPU tensors, through the test op library
(torch.ops.rustorch_kernels). Device-level tests: test_ops_conv.py."""

import pytest
import testing_ext
import torch

import rustorch_device  # noqa: F401

testing_ext.load()
K = torch.ops.rustorch_kernels

# N, C, H, W, M, kh, kw, stride, padding, dilation, groups, bias
CASES = [
    (2, 1, 28, 28, 32, 3, 3, (1, 1), (0, 0), (1, 1), 1, True),
    (3, 4, 9, 11, 6, 3, 2, (2, 1), (1, 2), (1, 2), 2, True),
    (2, 6, 7, 7, 6, 1, 1, (1, 1), (0, 0), (1, 1), 3, False),
    (1, 3, 5, 5, 4, 3, 3, (3, 2), (2, 0), (2, 1), 1, True),
    (2, 4, 6, 6, 8, 1, 1, (2, 2), (1, 1), (1, 1), 1, True),
    (5, 2, 1, 10, 4, 1, 3, (1, 1), (0, 1), (1, 1), 1, True),
    (4, 8, 12, 12, 8, 3, 3, (1, 1), (1, 1), (1, 1), 8, True),  # depthwise (direct loops)
    (3, 5, 11, 9, 5, 3, 5, (2, 1), (1, 2), (2, 1), 5, False),  # depthwise, strided, dilated
    (2, 4, 6, 6, 8, 3, 3, (1, 1), (1, 1), (1, 1), 4, True),  # 2 outputs per group: GEMM path
    (0, 2, 5, 5, 3, 3, 3, (1, 1), (0, 0), (1, 1), 1, True),  # empty batch
    # wide rows: im2col runs in blocks of a few output rows (rows_per_block in conv.cpp)
    (2, 64, 7, 200, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, True),
    (1, 64, 9, 130, 4, 3, 3, (2, 1), (1, 0), (1, 2), 2, False),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_conv2d_forward_and_backward_match_aten(dtype, case):
    n, c, h, w, m, kh, kw, stride, padding, dilation, groups, has_bias = case
    tol = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {}
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, dtype=dtype)
    weight = torch.randn(m, c // groups, kh, kw, dtype=dtype)
    bias = torch.randn(m, dtype=dtype) if has_bias else None
    args = (list(stride), list(padding), list(dilation))
    out = K.conv2d(x, weight, bias, *args, groups)
    torch.testing.assert_close(
        out, torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups), **tol
    )
    go = torch.randn_like(out)
    for mask in ([True, True, has_bias], [False, True, False], [True, False, False]):
        ours = K.conv2d_backward(go, x, weight, *args, groups, mask)
        ref = torch.ops.aten.convolution_backward(
            go, x, weight, [m] if has_bias else None, *args, False, [0, 0], groups, mask
        )
        for got, want in zip(ours, ref, strict=True):
            assert (got is None) == (want is None)
            if want is not None:
                torch.testing.assert_close(got, want, **tol)


def test_non_contiguous_input_and_errors():
    x = torch.randn(2, 5, 9, 3).permute(0, 3, 1, 2)  # channels-last-like strides
    w = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(
        K.conv2d(x, w, None, [1, 1], [1, 1], [1, 1], 1),
        torch.nn.functional.conv2d(x, w, None, 1, 1),
        atol=1e-4,
        rtol=1e-4,
    )
    with pytest.raises(RuntimeError, match="channels"):
        K.conv2d(torch.randn(1, 4, 5, 5), w, None, [1, 1], [0, 0], [1, 1], 1)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        K.conv2d(torch.randn(1, 3, 2, 2), w, None, [1, 1], [0, 0], [1, 1], 1)
