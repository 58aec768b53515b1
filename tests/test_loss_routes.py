"""F.mse_loss / F.smooth_l1_loss on rustorch: CPU's values and gradients, and no spurious
"An output with one or more elements was resized" warning (cpp_ext/aten/fallback_routes.cpp).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

LOSSES = {
    "mse_loss": F.mse_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "smooth_l1_loss_beta": lambda a, b, reduction: F.smooth_l1_loss(a, b, reduction=reduction,
                                                                     beta=0.5),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_cpu_without_warning(name, reduction):
    torch.manual_seed(0)
    a_cpu = torch.randn(5, 7, requires_grad=True)
    b_cpu = torch.randn(5, 7)
    a = a_cpu.detach().to("rustorch").requires_grad_()
    b = b_cpu.to("rustorch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = LOSSES[name](a, b, reduction=reduction)
        out.sum().backward()
    ref = LOSSES[name](a_cpu, b_cpu, reduction=reduction)
    ref.sum().backward()
    assert out.device.type == "rustorch" and out.shape == ref.shape
    torch.testing.assert_close(out.cpu(), ref.detach())
    torch.testing.assert_close(a.grad.cpu(), a_cpu.grad)
