"""Tensors on rustorch: transfers, views, printing, dtypes, resize_/set_, modules, autograd."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from device_helpers import run_python
from torch import nn

import rustorch_device

DEV = "rustorch"

ALL_DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64,
    torch.complex128, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8,
    torch.uint16, torch.uint32, torch.uint64, torch.bool, torch.float8_e4m3fn, torch.float8_e5m2,
]


def test_backend_name_and_tensor_methods():
    assert torch._C._get_privateuse1_backend_name() == "rustorch"
    t = torch.ones(2).rustorch()
    assert t.is_rustorch and t.device == torch.device("rustorch:0")
    assert not torch.ones(1).is_rustorch
    rustorch_device._register.register()  # idempotent


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_cpu_dtype_round_trips(dtype: torch.dtype):
    cpu = (torch.arange(12) % 3).to(dtype).view(3, 4)
    dev = cpu.to(DEV)
    assert dev.dtype == dtype and dev.device.type == "rustorch"
    assert torch.equal(dev.cpu().view(torch.uint8), cpu.view(torch.uint8))
    assert torch.equal(dev.t().cpu().contiguous().view(torch.uint8), cpu.t().contiguous().view(torch.uint8))
    assert torch.equal(dev.clone().cpu().view(torch.uint8), cpu.view(torch.uint8))


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32,
              torch.int64, torch.uint8, torch.bool, torch.complex64], ids=str
)
def test_ops_in_every_dtype_match_cpu(dtype: torch.dtype):
    cpu = (torch.arange(12) % 5).to(dtype).view(3, 4)
    dev = cpu.to(DEV)
    assert torch.equal((dev * dev).cpu(), cpu * cpu)
    assert torch.equal(dev.sum(0).cpu(), cpu.sum(0))
    real = (lambda t: t.real) if dtype.is_complex else (lambda t: t)
    assert torch.equal(real(dev).to(torch.float32).cpu(), real(cpu).to(torch.float32))


def test_copies_between_devices_and_dtypes():
    cpu = torch.randn(5, 6)
    dev = cpu.to(DEV)
    assert torch.equal(dev.cpu(), cpu)
    other = torch.empty(5, 6, device=DEV)
    other.copy_(dev)  # rustorch -> rustorch
    assert torch.equal(other.cpu(), cpu)
    half = torch.empty(5, 6, dtype=torch.float16, device=DEV).copy_(dev)
    assert torch.equal(half.cpu(), cpu.half())
    back = torch.empty(6, 5).copy_(dev.t())  # strided rustorch -> CPU
    assert torch.equal(back, cpu.t())
    dev2 = torch.zeros(6, 5, device=DEV)
    dev2.copy_(cpu.t())  # strided CPU -> rustorch
    assert torch.equal(dev2.cpu(), cpu.t())
    bcast = torch.zeros(3, 6, device=DEV).copy_(cpu[0])
    assert torch.equal(bcast.cpu(), cpu[0].expand(3, 6))
    assert torch.equal(cpu.to(DEV, non_blocking=True).to("cpu", non_blocking=True), cpu)


def test_conj_and_neg_views_copy_correctly():
    z = torch.tensor([1 + 2j, 3 - 1j], device=DEV)
    assert torch.equal(z.conj().cpu(), z.cpu().conj())
    assert torch.equal(z.conj().resolve_conj().cpu(), z.cpu().conj())
    assert torch.equal((z.conj() * 1).cpu(), z.cpu().conj())
    assert torch.equal(torch.view_as_real(z).cpu(), torch.view_as_real(z.cpu()))



# Ops on conj/neg views materialize them (Conjugate/Negative fallbacks clone, clone copies
# through _copy_from). If _copy_from re-entered those fallbacks, this recursed until a stack
# overflow killed the process, so the checks run in a child interpreter.
_MATH_BIT_VIEWS = """
import torch

DEV = "rustorch"
gen = torch.Generator().manual_seed(0)
z = torch.randn(4, dtype=torch.complex64, generator=gen)
d = z.to(DEV)
for view, ref in ((d.conj(), z.conj()), (torch._neg_view(d), torch._neg_view(z)),
                  (torch._neg_view(d.conj()), torch._neg_view(z.conj()))):
    assert torch.equal(view.clone().cpu(), ref.clone()), "clone"
    assert torch.equal((view + 1).cpu(), ref + 1), "add"
    assert torch.equal(torch.empty(4, dtype=torch.complex128, device=DEV).copy_(view).cpu(),
                       ref.to(torch.complex128)), "copy_"
dst = torch.zeros(4, dtype=torch.complex64, device=DEV)
dst.conj().copy_(d)  # writes through a conj view
assert torch.equal(dst.cpu(), z.conj()), "copy_ into a conj view"

# addcdiv/addcmul promoting float32 + float64 + complex128, with backward (OpInfo
# reference samples): the complex gradients are conj views.
a, b = torch.randn(2, 5, 5, dtype=torch.float64, generator=gen)
c = torch.randn(1, 5, dtype=torch.complex128, generator=gen)
for fn in (torch.addcdiv, torch.addcmul):
    cpu_leaves = [a.float().requires_grad_(), b.clone().requires_grad_(), c.clone().requires_grad_()]
    dev_leaves = [t.detach().to(DEV).requires_grad_() for t in cpu_leaves]
    expected = fn(*cpu_leaves, value=0.5)
    actual = fn(*dev_leaves, value=0.5)
    torch.testing.assert_close(actual.cpu(), expected)
    expected.abs().sum().backward()
    actual.abs().sum().backward()
    for dev_leaf, cpu_leaf in zip(dev_leaves, cpu_leaves):
        torch.testing.assert_close(dev_leaf.grad.cpu(), cpu_leaf.grad)
print("ok")
"""


def test_ops_on_conj_and_neg_views_do_not_recurse():
    assert run_python(_MATH_BIT_VIEWS, timeout=120).strip() == "ok"

def test_views_and_slicing_share_memory():
    base = torch.arange(24.0, device=DEV)
    v = base.view(4, 6)
    s = v[1:3, ::2]
    s.mul_(-1)
    t = v.t()
    u = base.unfold(0, 4, 4)
    expected = torch.arange(24.0).view(4, 6)
    expected[1:3, ::2] *= -1
    assert torch.equal(base.cpu().view(4, 6), expected)
    assert torch.equal(t.cpu(), expected.t())
    assert torch.equal(u.cpu(), expected.flatten().unfold(0, 4, 4))
    assert s._base is base and not s.is_contiguous()
    r = v.reshape(2, 12)
    assert r.data_ptr() == base.data_ptr()
    e = base[:4].expand(3, 4)
    assert e.stride() == (0, 1)


def test_print_item_tolist():
    t = torch.tensor([[1.5, -2.0], [3.0, 4.25]], device=DEV)
    text = str(t)
    assert "device='rustorch:0'" in text and "4.2500" in text
    assert t[1, 1].item() == 4.25
    assert t.tolist() == [[1.5, -2.0], [3.0, 4.25]]
    assert "rustorch" in repr(torch.randn(200, 200, device=DEV))
    assert torch.tensor(7, device=DEV).item() == 7
    assert bool(torch.tensor(True, device=DEV))


def test_resize_and_set():
    t = torch.arange(4.0, device=DEV)
    t.resize_(2, 5)
    assert t.shape == (2, 5) and t.device.type == "rustorch"
    assert t.flatten()[:4].cpu().tolist() == [0.0, 1.0, 2.0, 3.0]
    src = torch.arange(6.0, device=DEV)
    u = torch.empty(0, device=DEV).set_(src.untyped_storage(), 2, (2, 2), (2, 1))
    assert u.cpu().tolist() == [[2.0, 3.0], [4.0, 5.0]]
    w = torch.empty(0, device=DEV).set_(src)
    assert w.data_ptr() == src.data_ptr()
    w.set_()
    assert w.numel() == 0 and w.device.type == "rustorch"
    with pytest.raises(RuntimeError):
        torch.empty(0, device=DEV).set_(torch.ones(2).untyped_storage())


def test_non_strided_layouts_and_pinned_device_tensors_are_refused():
    with pytest.raises(RuntimeError, match="pin"):
        torch.empty(2, device=DEV, pin_memory=True)


def test_module_to_and_back():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    ref = copy.deepcopy(model)
    model.to(DEV)
    assert all(p.device.type == "rustorch" for p in model.parameters())
    x = torch.randn(5, 3)
    assert torch.allclose(model(x.to(DEV)).cpu(), ref(x), atol=1e-6)
    model.cpu()
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert copy.deepcopy(torch.ones(2, device=DEV)).device.type == "rustorch"


def test_autograd_through_a_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.GELU(), nn.Flatten(), nn.LayerNorm(3 * 6 * 6),
        nn.Linear(3 * 6 * 6, 5),
    )
    ref = copy.deepcopy(model)
    model.to(DEV)
    x = torch.randn(4, 1, 8, 8)
    target = torch.tensor([0, 1, 2, 4])
    loss_d = F.cross_entropy(model(x.to(DEV)), target.to(DEV))
    loss_c = F.cross_entropy(ref(x), target)
    loss_d.backward()
    loss_c.backward()
    assert abs(loss_d.item() - loss_c.item()) < 1e-5
    for pd, pc in zip(model.parameters(), ref.parameters(), strict=True):
        assert pd.grad.device.type == "rustorch"
        assert torch.allclose(pd.grad.cpu(), pc.grad, atol=1e-5)


def test_autograd_non_contiguous_and_higher_order():
    x = torch.randn(4, 6, device=DEV, requires_grad=True)
    y = (x.t()[::2] ** 3).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    g.sum().backward()
    xc = x.detach().cpu().requires_grad_()
    yc = (xc.t()[::2] ** 3).sum()
    (gc,) = torch.autograd.grad(yc, xc, create_graph=True)
    gc.sum().backward()
    assert torch.allclose(g.detach().cpu(), gc.detach(), atol=1e-5)
    assert torch.allclose(x.grad.cpu(), xc.grad, atol=1e-5)


def test_mixed_devices_are_refused():
    with pytest.raises(RuntimeError, match="same device"):
        torch.ones(3, device=DEV) + torch.ones(3)
