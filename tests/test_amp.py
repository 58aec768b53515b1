"""Autocast on rustorch: CUDA's cast policy, GradScaler, and activation checkpointing (which
enters autocast for the current accelerator even when every tensor is on the CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from device_helpers import run_python
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

DEV = "rustorch"
LOW = [torch.bfloat16, torch.float16]


def _t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=DEV)


def test_device_module_answers_autocast():
    assert torch.amp.is_autocast_available(DEV)
    assert torch.rustorch.get_amp_supported_dtype() == [torch.bfloat16, torch.float16]
    assert torch.get_autocast_dtype(DEV) == torch.float16  # PyTorch's default, as for CUDA
    with torch.autocast(DEV, enabled=False):
        assert (_t(2, 2) @ _t(2, 2)).dtype == torch.float32
    with torch.autocast(DEV, dtype=torch.bfloat16):
        assert torch.is_autocast_enabled(DEV)
        assert torch.get_autocast_dtype(DEV) == torch.bfloat16
    assert not torch.is_autocast_enabled(DEV)


@pytest.mark.parametrize("dtype", LOW)
def test_lower_precision_ops(dtype):
    a, b, v = _t(4, 4), _t(4, 4), _t(4)
    img, w = _t(1, 2, 6, 6), _t(3, 2, 3, 3)
    with torch.autocast(DEV, dtype=dtype):
        outs = {
            "mm": a @ b, "matmul": torch.matmul(a, b), "addmm": torch.addmm(a, a, b),
            "bmm": torch.bmm(a[None], b[None]), "baddbmm": torch.baddbmm(a[None], a[None], b[None]),
            "addbmm": torch.addbmm(a, a[None], b[None]), "mv": a @ v, "linear": F.linear(a, b, v),
            "conv2d": F.conv2d(img, w), "conv1d": F.conv1d(img[:, :, 0], w[:, :, 0]),
            "einsum": torch.einsum("ij,jk->ik", a, b),
        }
    for name, out in outs.items():
        assert out.dtype == dtype, name
    # The cast is the only difference: results equal the op on inputs cast by hand.
    torch.testing.assert_close(outs["mm"], a.to(dtype) @ b.to(dtype))


@pytest.mark.parametrize("dtype", LOW)
def test_fp32_ops_run_in_float32(dtype):
    a = _t(4, 4).to(dtype)
    t = torch.randint(0, 4, (4,), device=DEV)
    with torch.autocast(DEV, dtype=dtype):
        outs = {
            "softmax": torch.softmax(a, 1), "log_softmax": F.log_softmax(a, 1),
            "exp": a.exp(), "log": a.abs().log(), "pow": a.pow(2), "sum": a.sum(),
            "layer_norm": F.layer_norm(a, (4,)), "mse_loss": F.mse_loss(a, a.flip(0)),
            "nll_loss": F.nll_loss(a, t), "cumsum": a.cumsum(0),
        }
    for name, out in outs.items():
        assert out.dtype == torch.float32, name
    torch.testing.assert_close(outs["softmax"], torch.softmax(a.float(), 1))


@pytest.mark.parametrize("dtype", LOW)
def test_promote_and_untouched_ops(dtype):
    a = _t(4)
    with torch.autocast(DEV, dtype=dtype):
        low = a @ _t(4, 4)  # lower precision
        assert torch.addcmul(a, low, a).dtype == torch.float32  # promote to the widest
        assert torch.atan2(low, a).dtype == torch.float32
        assert (low + 1).dtype == dtype  # not in any list: runs in the input's dtype
        assert low.relu().dtype == dtype


def test_autocast_leaves_cpu_tensors_alone():
    a = torch.randn(3, 3)
    with torch.autocast(DEV, dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.float32


def test_binary_cross_entropy_is_refused_like_cuda():
    p = torch.rand(4, device=DEV)
    with torch.autocast(DEV), pytest.raises(RuntimeError, match="unsafe to autocast"):
        F.binary_cross_entropy(p, p)


def test_gradients_flow_back_in_float32():
    lin = torch.nn.Linear(4, 3).to(DEV)
    with torch.autocast(DEV, dtype=torch.bfloat16):
        loss = lin(_t(2, 4)).float().sum()
    loss.backward()
    assert lin.weight.grad.dtype == torch.float32 and lin.weight.grad.abs().sum() > 0


def test_grad_scaler_steps_and_skips_non_finite():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 2).to(DEV)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(DEV, init_scale=2.0**8, growth_interval=2)
    x = _t(4, 8)
    for _ in range(2):
        with torch.autocast(DEV, dtype=torch.float16):
            loss = lin(x).float().pow(2).mean()
        before = lin.weight.detach().clone()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        assert not torch.equal(before, lin.weight.detach())
    assert scaler.get_scale() == 2.0**9  # grew after growth_interval finite steps
    with torch.autocast(DEV, dtype=torch.float16):
        loss = lin(x * float("inf")).float().sum()
    before = lin.weight.detach().clone()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(before, lin.weight.detach())  # the step was skipped
    assert scaler.get_scale() == 2.0**8  # and the scale backed off


def _model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                               torch.nn.ReLU(), torch.nn.Linear(8, 2))


@pytest.mark.parametrize("device", ["cpu", DEV])
@pytest.mark.parametrize("mode", ["reentrant", "non_reentrant", "sequential"])
def test_checkpoint_matches_plain_backward(device, mode):
    m = _model().to(device)
    x = torch.randn(5, 6, device=device, requires_grad=True)
    m(x).pow(2).sum().backward()
    ref = [p.grad.clone() for p in m.parameters()] + [x.grad.clone()]
    m.zero_grad()
    x.grad = None
    if mode == "sequential":
        out = checkpoint_sequential(m, 2, x, use_reentrant=False)
    else:
        out = checkpoint(m, x, use_reentrant=mode == "reentrant")
    out.pow(2).sum().backward()
    got = [p.grad for p in m.parameters()] + [x.grad]
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r)


def test_checkpoint_under_autocast_on_device():
    m = _model().to(DEV)
    x = torch.randn(5, 6, device=DEV, requires_grad=True)
    with torch.autocast(DEV, dtype=torch.bfloat16):
        out = checkpoint(m, x, use_reentrant=False)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32


def test_cpu_only_checkpointing_works_with_the_package_autoloaded():
    # A fresh interpreter where nothing names rustorch: the autoload registers the device and
    # checkpoint() enters autocast for the current accelerator (rustorch) during recompute.
    out = run_python(
        """
        import torch
        from torch.utils.checkpoint import checkpoint, checkpoint_sequential
        assert torch.accelerator.current_accelerator().type == "rustorch"
        m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        x = torch.randn(3, 4, requires_grad=True)
        checkpoint(m, x, use_reentrant=False).sum().backward()
        checkpoint(m, x, use_reentrant=True).sum().backward()
        checkpoint_sequential(m, 2, x, use_reentrant=False).sum().backward()
        print("ok", x.grad.shape)
        """,
        env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "1"},
        timeout=120,
    )
    assert out.strip() == "ok torch.Size([3, 4])"
