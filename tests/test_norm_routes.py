"""layer_norm / group_norm on rustorch (both native: statistics in double) match CPU's float64
result within 1e-5, also over a one-element normalized shape / one-value groups, where x - mean
is rounding noise scaled by 1/sqrt(eps) and the composite (batch_norm based) statistics used to
move the weight gradient by up to 2.4e-4."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rustorch_device


def _both(fn, *tensors: torch.Tensor):
    cpu = [t.detach().clone().requires_grad_() for t in tensors]
    dev = [t.detach().to("rustorch").requires_grad_() for t in tensors]
    out_c, out_d = fn(*cpu), fn(*dev)
    g = torch.randn(out_c.shape, generator=torch.Generator().manual_seed(1)).to(out_c.dtype)
    out_c.backward(g)
    out_d.backward(g.to("rustorch"))
    return [out_c] + [t.grad for t in cpu], [out_d.cpu()] + [t.grad.cpu() for t in dev]


@pytest.mark.parametrize("shape", [(64, 1), (8, 3, 1), (16, 32)])
def test_layer_norm_matches_float64_reference(shape):
    """The native layer_norm (aten/native/layer_norm) keeps its statistics in double, so it is
    compared with CPU's float64 result: over a one-element shape CPU's own float32 kernel
    returns rounding noise there (x - mean != 0), which is not a reference to match bit for bit."""
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + 1
    w, b = torch.randn(shape[-1]), torch.randn(shape[-1])
    fn = lambda x, w, b: F.layer_norm(x, (shape[-1],), w, b)  # noqa: E731
    ref, _ = _both(fn, x.double(), w.double(), b.double())
    _, got = _both(fn, x, w, b)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r.detach().float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("shape", "groups"), [((4, 6, 5), 3), ((8, 4, 1), 4), ((2, 6, 3, 3), 2)])
def test_group_norm_matches_float64_reference(shape, groups):
    """Native group_norm against CPU's float64 result (as layer_norm above); (8, 4, 1) with 4
    groups normalizes single values, the case the batch_norm-based composite got wrong."""
    torch.manual_seed(0)
    x = torch.randn(*shape) * 2 - 1
    w, b = torch.randn(shape[1]), torch.randn(shape[1])
    fn = lambda x, w, b: F.group_norm(x, groups, w, b)  # noqa: E731
    ref, _ = _both(fn, x.double(), w.double(), b.double())
    rustorch_device.reset_op_stats()
    _, got = _both(fn, x, w, b)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r.detach().float(), rtol=1e-5, atol=1e-5)
    stats = rustorch_device.op_stats()
    for op in ("aten::native_group_norm", "aten::native_group_norm_backward"):
        assert stats[op]["native"] > 0 and stats[op]["fallback"] == 0, (op, stats.get(op))
