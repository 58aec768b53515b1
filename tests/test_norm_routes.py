"""layer_norm / group_norm on rustorch give CPU's outputs and gradients bit for bit, also over a
one-element normalized shape, where x - mean is rounding noise scaled by 1/sqrt(eps) and the
composite (batch_norm based) statistics used to move the weight gradient by up to 2.4e-4."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


def _both(fn, *tensors: torch.Tensor):
    cpu = [t.detach().clone().requires_grad_() for t in tensors]
    dev = [t.detach().to("rustorch").requires_grad_() for t in tensors]
    out_c, out_d = fn(*cpu), fn(*dev)
    g = torch.randn(out_c.shape)
    out_c.backward(g)
    out_d.backward(g.to("rustorch"))
    return [out_c] + [t.grad for t in cpu], [out_d.cpu()] + [t.grad.cpu() for t in dev]


@pytest.mark.parametrize("shape", [(64, 1), (8, 3, 1), (16, 32)])
def test_layer_norm_matches_cpu_exactly(shape):
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + 1
    w, b = torch.randn(shape[-1]), torch.randn(shape[-1])
    ref, got = _both(lambda x, w, b: F.layer_norm(x, (shape[-1],), w, b), x, w, b)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r.detach(), rtol=0, atol=0)


def test_group_norm_matches_cpu_exactly():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5) * 2 - 1
    w, b = torch.randn(6), torch.randn(6)
    ref, got = _both(lambda x, w, b: F.group_norm(x, 3, w, b), x, w, b)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r.detach(), rtol=0, atol=0)
