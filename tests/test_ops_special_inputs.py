"""Inputs no native kernel reads as plain memory: ZeroTensors (`_efficientzerotensor`, made by
forward AD and torch.func), lazily conjugated / negated views. They must give CPU's answers
(the registration sends them to the fallback, ZeroTensor keeps its dispatch key), never crash
or read unallocated memory. Also torch.func transforms over native ops, against CPU."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

DEV = "rustorch"


def cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu")


def pair(*shape: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(*shape, dtype=dtype)
    return x, x.to(DEV)


def test_efficientzerotensor_is_a_device_zero_tensor():
    z = torch._efficientzerotensor(4, 3, device=DEV)
    assert z.device.type == DEV and z._is_zerotensor()
    assert torch.equal(z.cpu(), torch.zeros(4, 3))


def test_zero_tensor_operands_match_cpu():
    x, xd = pair(4, 4)
    z, zd = torch._efficientzerotensor(4, 4), torch._efficientzerotensor(4, 4, device=DEV)
    torch.testing.assert_close(cpu(zd * xd), z * x)
    torch.testing.assert_close(cpu(xd + zd), x + z)
    torch.testing.assert_close(cpu(zd @ xd), z @ x)
    torch.testing.assert_close(cpu(xd @ zd), x @ z)


@pytest.mark.parametrize("bit", ["conj", "neg"])
def test_conj_and_neg_views_match_cpu(bit):
    x = torch.randn(3, 4, dtype=torch.complex64)
    y = torch.randn(4, 2, dtype=torch.complex64)
    xd, yd = x.to(DEV), y.to(DEV)
    if bit == "conj":
        xv, xdv = x.conj(), xd.conj()
        assert xdv.is_conj()
    else:
        xv, xdv = x.conj().imag, xd.conj().imag  # imag of a conj view carries the neg bit
        assert xdv.is_neg()
        y, yd = y.real.contiguous(), yd.real.contiguous()
    torch.testing.assert_close(cpu(xdv @ yd), xv @ y)
    torch.testing.assert_close(cpu(xdv * 2), xv * 2)
    torch.testing.assert_close(cpu(xdv + xdv), xv + xv)


def test_neg_bit_float_view_matches_cpu():
    # A float view with the neg bit (imag of a conj view): the float mm kernel must never read
    # its memory un-negated (ATen resolves the bit first, or the registration sends it to CPU).
    x = torch.randn(3, 4, dtype=torch.complex64).to(DEV)
    v = x.conj().imag
    assert v.is_neg() and v.dtype == torch.float32
    w = torch.randn(4, 5, device=DEV)
    torch.testing.assert_close(cpu(v @ w), cpu(x).conj().imag @ cpu(w))
    torch.testing.assert_close(cpu(torch.addmm(w[:3], v, w[:, :0].new_ones(4, 5))),
                               cpu(w[:3]) + cpu(x).conj().imag @ torch.ones(4, 5))


def test_hessian_matches_cpu():
    x, xd = pair(5, dtype=torch.float64)

    def f(t):
        return (t**3).sum()

    torch.testing.assert_close(cpu(torch.func.hessian(f)(xd)), torch.func.hessian(f)(x))


def test_jacfwd_and_jvp_through_linear_match_cpu():
    w, wd = pair(3, 4, dtype=torch.float64)
    x, xd = pair(4, dtype=torch.float64)
    v, vd = pair(4, dtype=torch.float64)

    def f(t, weight):
        return torch.tanh(weight @ t).relu() * 2

    torch.testing.assert_close(
        cpu(torch.func.jacfwd(f)(xd, wd)), torch.func.jacfwd(f)(x, w)
    )
    out_d, tan_d = torch.func.jvp(lambda t: f(t, wd), (xd,), (vd,))
    out, tan = torch.func.jvp(lambda t: f(t, w), (x,), (v,))
    torch.testing.assert_close(cpu(out_d), out)
    torch.testing.assert_close(cpu(tan_d), tan)


def test_forward_ad_through_conv2d_matches_cpu():
    x, xd = pair(2, 3, 7, 6, dtype=torch.float64)
    t, td = pair(2, 3, 7, 6, dtype=torch.float64)
    w, wd = pair(4, 3, 3, 3, dtype=torch.float64)
    b, bd = pair(4, dtype=torch.float64)

    def run(inp, tan, weight, bias):
        with fwAD.dual_level():
            out = F.conv2d(fwAD.make_dual(inp, tan), weight, bias, padding=1, stride=(2, 1))
            primal, tangent = fwAD.unpack_dual(out)
            return cpu(primal), cpu(tangent)

    got, want = run(xd, td, wd, bd), run(x, t, w, b)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
