"""Normalization layers, pow, integer add and the masked-softmax pieces (isneginf, all, where)
on rustorch against CPU ATen.

OpInfo samples of nn.functional.batch_norm (train and eval, with and without affine parameters
and running statistics), nn.functional.layer_norm and group_norm (float32 and float64): outputs and input
gradients must match CPU and run on the native kernels. Module-level checks: running statistics and num_batches_tracked over
training steps, eval mode, channels_last, bit-identical results at 1 and 2 threads, and the
integer add_ of num_batches_tracked staying native.
"""

import rustorch_device  # noqa: I001  (registers the device before torch.testing._internal)
import torch
import torch.nn as nn
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase

from opinfo_helpers import compare_with_cpu, samples

DEV = "rustorch"
BN_OPS = [op for op in op_db if op.name == "nn.functional.batch_norm"]
LN_OPS = [op for op in op_db if op.name == "nn.functional.layer_norm"]
GN_OPS = [op for op in op_db if op.name == "nn.functional.group_norm"]
TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-7, 1e-7)}


def native_and_fallback(op: str) -> tuple[int, int]:
    s = rustorch_device.op_stats().get(op, {"native": 0, "fallback": 0})
    return s["native"], s["fallback"]


class TestBatchNormOps(TestCase):
    @ops(BN_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)
        native, _ = native_and_fallback("aten::native_batch_norm")
        self.assertGreater(native, 0)


    @ops(LN_OPS, dtypes=(torch.float32, torch.float64))
    def test_layer_norm_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)
        for name in ("aten::native_layer_norm", "aten::native_layer_norm_backward"):
            native, _ = native_and_fallback(name)
            self.assertGreater(native, 0, name)

    @ops(GN_OPS, dtypes=(torch.float32, torch.float64))
    def test_group_norm_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)
        for name in ("aten::native_group_norm", "aten::native_group_norm_backward"):
            native, _ = native_and_fallback(name)
            self.assertGreater(native, 0, name)


instantiate_device_type_tests(TestBatchNormOps, globals(), only_for="rustorch")


def _train_both(channels_last: bool, steps: int = 3) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    cpu = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU())
    dev = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU())
    dev.load_state_dict(cpu.state_dict())
    dev = dev.to(DEV)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    cpu, dev = cpu.to(memory_format=fmt), dev.to(memory_format=fmt)
    for step in range(steps):
        x = torch.randn(4, 3, 9, 8, generator=torch.Generator().manual_seed(step))
        x = x.to(memory_format=fmt)
        for model, inp in ((cpu, x), (dev, x.to(DEV))):
            model.zero_grad()
            model(inp).square().mean().backward()
    return cpu, dev


def test_batch_norm_module_training_matches_cpu():
    for channels_last in (False, True):
        rustorch_device.reset_op_stats()
        cpu, dev = _train_both(channels_last)
        bn_cpu, bn_dev = cpu[1], dev[1]
        torch.testing.assert_close(bn_dev.running_mean.cpu(), bn_cpu.running_mean)
        torch.testing.assert_close(bn_dev.running_var.cpu(), bn_cpu.running_var)
        assert bn_dev.num_batches_tracked.item() == bn_cpu.num_batches_tracked.item() == 3
        torch.testing.assert_close(bn_dev.weight.grad.cpu(), bn_cpu.weight.grad)
        torch.testing.assert_close(bn_dev.bias.grad.cpu(), bn_cpu.bias.grad)
        torch.testing.assert_close(dev[0].weight.grad.cpu(), cpu[0].weight.grad)
        for op in ("aten::native_batch_norm", "aten::native_batch_norm_backward",
                   "aten::add_.Tensor"):
            native, fallback = native_and_fallback(op)
            assert native > 0 and fallback == 0, (op, native, fallback)
        # eval: running statistics, no update
        cpu.eval()
        dev.eval()
        x = torch.randn(2, 3, 9, 8)
        torch.testing.assert_close(dev(x.to(DEV)).cpu(), cpu(x))
        assert bn_dev.num_batches_tracked.item() == 3


def test_batch_norm_eval_backward_matches_cpu():
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(5).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn_dev = nn.BatchNorm2d(5).eval()
    bn_dev.load_state_dict(bn.state_dict())
    bn_dev = bn_dev.to(DEV)
    x = torch.randn(3, 5, 4, 4, dtype=torch.float32, requires_grad=True)
    xd = x.detach().to(DEV).requires_grad_()
    g = torch.randn(3, 5, 4, 4)
    bn(x).backward(g)
    bn_dev(xd).backward(g.to(DEV))
    torch.testing.assert_close(xd.grad.cpu(), x.grad)
    torch.testing.assert_close(bn_dev.weight.grad.cpu(), bn.weight.grad)


def test_batch_norm_channels_last_matches_cpu():
    x = torch.randn(4, 6, 5, 7).to(memory_format=torch.channels_last).requires_grad_()
    xd = x.detach().to(DEV).requires_grad_()
    assert xd.is_contiguous(memory_format=torch.channels_last)
    bn, bn_dev = nn.BatchNorm2d(6), nn.BatchNorm2d(6).to(DEV)
    out, out_d = bn(x), bn_dev(xd)
    assert out_d.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(out)
    out.backward(g)
    out_d.backward(g.to(DEV))
    torch.testing.assert_close(out_d.cpu(), out)
    torch.testing.assert_close(xd.grad.cpu(), x.grad)
    torch.testing.assert_close(bn_dev.running_var.cpu(), bn.running_var)


def test_batch_norm_bit_identical_at_1_and_2_threads():
    x = torch.randn(8, 16, 20, 20, device=DEV, requires_grad=True)
    xs = [x, x.detach().to(memory_format=torch.channels_last).requires_grad_()]
    old = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row = []
            for inp in xs:
                bn = nn.BatchNorm2d(16).to(DEV)
                out = bn(inp)
                (grad,) = torch.autograd.grad(out.square().sum(), inp)
                row += [out.detach().cpu(), grad.cpu(), bn.running_var.cpu()]
            results.append(row)
    finally:
        torch.set_num_threads(old)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_integer_add_sub_mul_match_cpu_and_run_native():
    a = torch.randint(-100, 100, (5, 7), dtype=torch.int64)
    b = torch.randint(-100, 100, (7,), dtype=torch.int64)
    ad, bd = a.to(DEV), b.to(DEV)
    rustorch_device.reset_op_stats()
    assert torch.equal((ad + bd).cpu(), a + b)
    assert torch.equal((ad - 3 * bd).cpu(), a - 3 * b)
    assert torch.equal(torch.sub(ad, bd, alpha=2).cpu(), torch.sub(a, b, alpha=2))
    assert torch.equal((ad * bd).cpu(), a * b)
    c = torch.zeros((), dtype=torch.long, device=DEV)
    c.add_(1)
    c += 1
    assert c.item() == 2
    i32 = torch.randint(-9, 9, (4, 3), dtype=torch.int32)
    assert torch.equal((i32.to(DEV) * 3).cpu(), i32 * 3)
    assert native_and_fallback("aten::add.Tensor")[1] == 0
    assert native_and_fallback("aten::add_.Tensor") == (2, 0)
    assert native_and_fallback("aten::mul.Tensor")[1] == 0
    # Promotion to float (int tensor + float number) and true division stay CPU's answers.
    assert torch.equal((ad + 0.5).cpu(), a + 0.5)
    assert torch.equal((ad / bd.clamp(min=1)).cpu(), a / b.clamp(min=1))
    assert torch.equal((ad.bool() + bd.bool()).cpu(), a.bool() + b.bool())


def test_pow_scalar_matches_cpu_and_runs_native():
    x = torch.rand(6, 5, dtype=torch.float64) + 0.1
    xd = x.to(DEV)
    rustorch_device.reset_op_stats()
    for e in (2, 3, 0.5, -0.5, -1, -2, 1, 0, 1.7, -2.5):
        torch.testing.assert_close(torch.pow(xd, e).cpu(), torch.pow(x, e), rtol=1e-12, atol=0)
    torch.testing.assert_close(xd.square().cpu(), x.square())
    y = xd.clone()
    y.pow_(3)
    torch.testing.assert_close(y.cpu(), x.pow(3))
    native, fallback = native_and_fallback("aten::pow.Tensor_Scalar")
    assert native > 0 and fallback == 0
    # Integer tensors and complex exponents stay CPU's.
    i = torch.arange(5)
    assert torch.equal(torch.pow(i.to(DEV), 2).cpu(), torch.pow(i, 2))


def test_masked_softmax_pieces_match_cpu_and_run_native():
    """isneginf, all over one dim and where: attention's masked-row softmax (_safe_softmax)."""
    x = torch.randn(3, 4, 5)
    x[0, 1, :] = float("-inf")
    x[2, :, 3] = float("-inf")
    xd = x.to(DEV)
    rustorch_device.reset_op_stats()
    assert torch.equal(torch.isneginf(xd).cpu(), torch.isneginf(x))
    m, md = torch.isneginf(x), torch.isneginf(xd)
    for dim in (0, 1, 2, -1):
        for keepdim in (False, True):
            assert torch.equal(torch.all(md, dim, keepdim=keepdim).cpu(),
                               torch.all(m, dim, keepdim=keepdim))
    assert torch.equal(torch.all(md.transpose(0, 2), 1).cpu(), torch.all(m.transpose(0, 2), 1))
    cond = torch.all(m, -1, keepdim=True)
    y = torch.randn(3, 4, 5)
    got = torch.where(cond.to(DEV), torch.zeros_like(xd), y.to(DEV)).cpu()
    assert torch.equal(got, torch.where(cond, torch.zeros_like(x), y))
    torch.testing.assert_close(torch._safe_softmax(xd, -1).cpu(), torch._safe_softmax(x, -1))
    for op in ("aten::isneginf.out", "aten::all.out", "aten::where.self_out"):
        native, fallback = native_and_fallback(op)
        assert native > 0 and fallback == 0, (op, native, fallback)
