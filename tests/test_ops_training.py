"""Training-path kernels on rustorch against CPU ATen, driven by PyTorch's OpInfo database.

Every sample_inputs / reference_inputs sample of each OpInfo below runs on rustorch and on CPU
in float32 and float64, contiguous and as a non-contiguous copy; outputs and input gradients
must agree (float32: atol = rtol = 1e-4). The aten ops each OpInfo exercises must have run on
the native kernels (op_stats), so a silent fallback cannot pass as native.
"""

import rustorch_device  # noqa: F401, I001  (registers the device before torch.testing._internal)
import torch
import torch.nn.functional as F
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase
from torch.utils._pytree import tree_flatten, tree_map

from opinfo_helpers import fresh_leaf, to_cpu

# (OpInfo name, variant) -> aten ops that must have run natively for its samples.
NATIVE_OPS: dict[tuple[str, str], list[str]] = {
    ("log_softmax", ""): ["aten::_log_softmax", "aten::_log_softmax_backward_data"],
    ("log_softmax", "with_dtype"): ["aten::_log_softmax"],
    ("softmax", ""): ["aten::_softmax", "aten::_softmax_backward_data"],
    ("softmax", "with_dtype"): ["aten::_softmax"],
    ("_softmax_backward_data", ""): ["aten::_softmax_backward_data"],
    ("nn.functional.nll_loss", ""): ["aten::nll_loss_forward", "aten::nll_loss_backward"],
    ("nn.functional.cross_entropy", ""): ["aten::_log_softmax", "aten::nll_loss_forward"],
    ("nn.functional.relu", ""): ["aten::relu", "aten::threshold_backward"],
    ("nn.functional.threshold", ""): ["aten::threshold_backward"],
    ("nn.functional.max_pool2d", ""): [
        "aten::max_pool2d_with_indices",
        "aten::max_pool2d_with_indices_backward",
    ],
    ("max_pool2d_with_indices_backward", ""): ["aten::max_pool2d_with_indices_backward"],
    ("add", ""): ["aten::add.Tensor"],
    ("sub", ""): ["aten::sub.Tensor"],
    ("mul", ""): ["aten::mul.Tensor"],
    ("div", "no_rounding_mode"): ["aten::div.Tensor"],
    ("true_divide", ""): ["aten::div.Tensor"],
    ("sqrt", ""): ["aten::sqrt"],
    ("neg", ""): ["aten::neg"],
    ("reciprocal", ""): ["aten::reciprocal"],
    ("addcmul", ""): ["aten::addcmul"],
    ("addcdiv", ""): ["aten::addcdiv"],
    ("lerp", ""): ["aten::lerp.Scalar", "aten::lerp.Tensor"],
    ("eq", ""): ["aten::eq.Tensor"],
    ("sum", ""): ["aten::sum.dim_IntList"],
    ("mean", ""): ["aten::mean.dim"],
    ("argmax", ""): ["aten::argmax"],
    ("fill", ""): ["aten::fill_.Scalar"],
    ("zero_", ""): ["aten::zero_"],
}
SELECTED = [op for op in op_db if (op.name, op.variant_test_name) in NATIVE_OPS]

TOL = {torch.float32: {"atol": 1e-4, "rtol": 1e-4}, torch.float64: {"atol": 1e-7, "rtol": 1e-7}}


def _leaf_inputs(sample) -> list[torch.Tensor]:
    leaves, _ = tree_flatten((sample.input, sample.args, sample.kwargs))
    return [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]


# Ops whose samples carry int64 class targets / pooling indices next to the float operands.
INT64_OPERANDS = {
    "nn.functional.nll_loss",
    "nn.functional.cross_entropy",
    "max_pool2d_with_indices_backward",
}


def _in_domain(op, sample, dtype) -> bool:
    """Whether the native kernels must take this sample (else the fallback may, by design):
    every tensor of the tested dtype (no type promotion), int64 targets/indices where the op
    has them, and no channels-last pooling input."""
    leaves, _ = tree_flatten((sample.input, sample.args, sample.kwargs))
    for t in leaves:
        if not isinstance(t, torch.Tensor):
            continue
        if t.dtype != dtype and not (t.dtype == torch.int64 and op.name in INT64_OPERANDS):
            return False
        if (t.dim() == 4 and not t.is_contiguous()
                and t.is_contiguous(memory_format=torch.channels_last)):
            return False
    return True


def _fallback_counts(names: list[str]) -> dict[str, int]:
    stats = rustorch_device.op_stats()
    return {n: stats.get(n, {}).get("fallback", 0) for n in names}


def _run(op, sample):
    return op(sample.input, *sample.args, **sample.kwargs)


def _grads(out, inputs, seed: int):
    outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor) and o.requires_grad]
    if not outs or not inputs:
        return None
    gen = torch.Generator().manual_seed(seed)
    grad_outs = [torch.randn(o.shape, dtype=o.dtype, generator=gen).to(o.device) for o in outs]
    return torch.autograd.grad(outs, inputs, grad_outs, allow_unused=True)


class TestTrainingOps(TestCase):
    def _compare(self, op, sample, dtype, index: int) -> None:
        sample = sample.transform(fresh_leaf)
        cpu_sample = sample.transform(to_cpu)
        expected = _run(op, cpu_sample)
        actual = _run(op, sample)
        msg = f"{op.name} sample {index}: {sample.summary()}"
        torch.testing.assert_close(tree_map(to_cpu, actual), expected, msg=msg, **TOL[dtype],
                                   equal_nan=True)
        if not op.supports_autograd:
            return
        grads = _grads(actual, _leaf_inputs(sample), index)
        ref = _grads(expected, _leaf_inputs(cpu_sample), index)
        if grads is not None:
            torch.testing.assert_close(tree_map(to_cpu, grads), ref, msg="grad of " + msg,
                                       **TOL[dtype], equal_nan=True)

    @ops(SELECTED, allowed_dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        rustorch_device.reset_op_stats()
        grad = op.supports_autograd
        expected_native = NATIVE_OPS[(op.name, op.variant_test_name)]
        samples = list(op.sample_inputs(device, dtype, requires_grad=grad))
        if op.reference_inputs_func is not None:
            try:
                samples += list(op.reference_inputs(device, dtype, requires_grad=grad))
            except ValueError:
                # addcmul/addcdiv reference inputs include integer operands, which cannot
                # require grad: take them without gradients (outputs are still compared).
                samples += list(op.reference_inputs(device, dtype, requires_grad=False))
        self.assertTrue(samples)
        for i, sample in enumerate(samples):
            for variant in (sample, sample.noncontiguous()):
                before = _fallback_counts(expected_native)
                self._compare(op, variant, dtype, i)
                if _in_domain(op, variant, dtype):
                    self.assertEqual(_fallback_counts(expected_native), before,
                                     f"sample {i} fell back: {variant.summary()}")
        stats = rustorch_device.op_stats()
        for name in expected_native:
            self.assertGreater(stats.get(name, {}).get("native", 0), 0, f"{name} never ran natively")


class TestLossGradcheck(TestCase):
    """gradcheck in float64 on the device for the cross-entropy pieces."""

    def _inputs(self, device):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(5, 7, dtype=torch.float64, generator=gen).to(device).requires_grad_()
        target = torch.tensor([0, 6, 3, -100, 2]).to(device)
        weight = torch.rand(7, dtype=torch.float64, generator=gen).to(device)
        return x, target, weight

    def test_log_softmax(self, device):
        x, _, _ = self._inputs(device)
        self.assertTrue(torch.autograd.gradcheck(lambda t: F.log_softmax(t, 1), (x,)))
        self.assertTrue(torch.autograd.gradcheck(lambda t: F.log_softmax(t, 0), (x,)))

    def test_nll_loss(self, device):
        x, target, weight = self._inputs(device)
        for reduction in ("none", "mean", "sum"):
            for w in (None, weight):
                self.assertTrue(torch.autograd.gradcheck(
                    lambda t, r=reduction, w=w: F.nll_loss(t, target, weight=w, reduction=r), (x,)))

    def test_cross_entropy(self, device):
        x, target, weight = self._inputs(device)
        for reduction in ("none", "mean", "sum"):
            self.assertTrue(torch.autograd.gradcheck(
                lambda t, r=reduction: F.cross_entropy(t, target, weight=weight, reduction=r), (x,)))
        x4 = x.detach()[:4, :6].reshape(1, 6, 2, 2).clone().requires_grad_()
        t4 = torch.tensor([[[0, 5], [3, -100]]]).to(device)
        self.assertTrue(torch.autograd.gradcheck(lambda t: F.cross_entropy(t, t4), (x4,)))


class TestDropout(TestCase):
    """Dropout is random: check its law and its algebra, not CPU's numbers."""

    def test_mask_and_scale(self, device):
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(64, 9216, dtype=dtype).to(device)
            for p in (0.25, 0.5):
                out, mask = torch.ops.aten.native_dropout(x, p, True)
                self.assertEqual(mask.dtype, torch.bool)
                keep = mask.float().mean().item()
                self.assertLess(abs(keep - (1 - p)), 0.01)
                self.assertEqual(out.cpu(), x.cpu() * mask.cpu() * (1 / (1 - p)), atol=0, rtol=0)
                grad = torch.randn_like(x.cpu()).to(device)
                gi = torch.ops.aten.native_dropout_backward(grad, mask, 1 / (1 - p))
                self.assertEqual(gi.cpu(), grad.cpu() * mask.cpu() * (1 / (1 - p)), atol=0, rtol=0)
            out, mask = torch.ops.aten.native_dropout(x, 0.0, True)
            self.assertTrue(mask.all().item())
            self.assertEqual(out.cpu(), x.cpu(), atol=0, rtol=0)
            out, mask = torch.ops.aten.native_dropout(x, 1.0, True)
            self.assertFalse(mask.any().item())
            self.assertEqual(out.cpu(), torch.zeros_like(x.cpu()), atol=0, rtol=0)
            out, mask = torch.ops.aten.native_dropout(x, 0.5, False)
            self.assertTrue(mask.all().item())
            self.assertEqual(out.cpu(), x.cpu(), atol=0, rtol=0)

    def test_seeded_and_noncontiguous(self, device):
        x = torch.randn(32, 48).to(device).t()
        torch.manual_seed(7)
        a = F.dropout(x, 0.3, training=True)
        torch.manual_seed(7)
        b = F.dropout(x, 0.3, training=True)
        c = F.dropout(x, 0.3, training=True)
        self.assertEqual(a.cpu(), b.cpu(), atol=0, rtol=0)
        self.assertNotEqual(a.cpu(), c.cpu())
        kept = a.cpu() != 0
        self.assertEqual(a.cpu()[kept], x.cpu()[kept] / 0.7)

    def test_autograd(self, device):
        x = torch.randn(16, 20, dtype=torch.float64).to(device).requires_grad_()
        torch.manual_seed(3)
        y = F.dropout(x, 0.4, training=True)
        y.sum().backward()
        self.assertEqual(x.grad.cpu(), (y.detach().cpu() != 0).double() / 0.6)
        stats = rustorch_device.op_stats()
        self.assertGreater(stats["aten::native_dropout"]["native"], 0)
        self.assertGreater(stats["aten::native_dropout_backward"]["native"], 0)


def _lists(device, dtype, shapes, seed):
    gen = torch.Generator().manual_seed(seed)
    cpu = [torch.randn(s, dtype=dtype, generator=gen) for s in shapes]
    return cpu, [t.to(device) for t in cpu]


class TestForeach(TestCase):
    """The _foreach_* overloads the optimizers call, against CPU; in-place and out-of-place."""

    SHAPES = [(3, 4), (17,), (), (5, 1, 3)]

    def _check(self, fn, n_lists: int, device: str, inplace: bool) -> None:
        for dtype in (torch.float32, torch.float64):
            lists = [_lists(device, dtype, self.SHAPES, seed) for seed in range(n_lists)]
            cpu = [c for c, _ in lists]
            dev = [d for _, d in lists]
            # A non-contiguous member, to exercise the strided path.
            big_c = torch.randn(6, 8, dtype=dtype)
            cpu[0].append(big_c.t())
            for i in range(1, n_lists):
                cpu[i].append(torch.rand(8, 6, dtype=dtype) + 0.5)
            dev[0].append(big_c.to(device).t())
            for i in range(1, n_lists):
                dev[i].append(cpu[i][-1].to(device))
            if inplace:
                fn(*cpu)
                fn(*dev)
                got, want = dev[0], cpu[0]
            else:
                got, want = fn(*dev), fn(*cpu)
            for g, w in zip(got, want, strict=True):
                self.assertEqual(g.cpu(), w, **TOL[dtype])

    def test_binary(self, device):
        for name in ("add", "sub", "mul", "div"):
            f = getattr(torch, f"_foreach_{name}")
            f_ = getattr(torch, f"_foreach_{name}_")
            self._check(lambda a, f=f: f(a, 1.5), 1, device, False)
            self._check(lambda a, f=f_: f(a, -0.5), 1, device, True)
            self._check(lambda a, b, f=f: f(a, b), 2, device, False)
            self._check(lambda a, b, f=f_: f(a, b), 2, device, True)
            self._check(lambda a, f=f: f(a, [0.5, 2, -1, 3, 0.25]), 1, device, False)
            self._check(lambda a, f=f_: f(a, [0.5, 2, -1, 3, 0.25]), 1, device, True)
        self._check(lambda a, b: torch._foreach_add(a, b, alpha=-0.3), 2, device, False)
        self._check(lambda a, b: torch._foreach_add_(a, b, alpha=-0.3), 2, device, True)
        self._check(lambda a, b: torch._foreach_sub_(a, b, alpha=2), 2, device, True)
        self._check(lambda a: torch._foreach_add_(a, torch.tensor(2.0), alpha=0.5), 1, device,
                    True)
        self._check(lambda a: torch._foreach_mul_(a, torch.tensor(3.0)), 1, device, True)
        self._check(lambda a: torch._foreach_div(a, torch.tensor(3.0)), 1, device, False)

    def test_pointwise_unary_lerp(self, device):
        for name in ("addcmul", "addcdiv"):
            f = getattr(torch, f"_foreach_{name}")
            f_ = getattr(torch, f"_foreach_{name}_")
            self._check(lambda a, b, c, f=f: f(a, b, c, value=0.7), 3, device, False)
            self._check(lambda a, b, c, f=f_: f(a, b, c, value=-2), 3, device, True)
            self._check(lambda a, b, c, f=f_: f(a, b, c, [0.1, 0.2, 0.3, 0.4, 0.5]), 3, device,
                        True)
            self._check(lambda a, b, c, f=f: f(a, b, c, [0.1, 0.2, 0.3, 0.4, 0.5]), 3, device,
                        False)
        for name in ("sqrt", "neg", "reciprocal"):
            f = getattr(torch, f"_foreach_{name}")
            f_ = getattr(torch, f"_foreach_{name}_")
            # Positive inputs (in place, so the in-place variant sees them too).
            self._check(lambda a, f=f: f([t.abs_().add_(0.1) for t in a]), 1, device, False)
            self._check(lambda a, f=f_: f([t.abs_().add_(0.1) for t in a]), 1, device, True)
        self._check(lambda a, b: torch._foreach_lerp(a, b, 0.3), 2, device, False)
        self._check(lambda a, b: torch._foreach_lerp_(a, b, 0.9), 2, device, True)
        self._check(lambda a, b, c: torch._foreach_lerp_(a, b, c), 3, device, True)

    def test_optimizer_steps_native(self, device):
        """SGD(momentum), Adam, AdamW and Adadelta steps: match CPU and use no fallback."""
        makers = {
            "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2),
            "adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0),
        }
        for name, make in makers.items():
            gen = torch.Generator().manual_seed(0)
            init = [torch.randn(s, generator=gen) for s in [(8, 4), (4,), (3, 3, 2)]]
            grads = [[torch.randn(t.shape, generator=gen) for t in init] for _ in range(3)]
            p_cpu = [t.clone().requires_grad_() for t in init]
            p_dev = [t.to(device).requires_grad_() for t in init]
            o_cpu, o_dev = make(p_cpu), make(p_dev)
            rustorch_device.reset_op_stats()
            for g in grads:
                for p, gg in zip(p_cpu, g, strict=True):
                    p.grad = gg.clone()
                for p, gg in zip(p_dev, g, strict=True):
                    p.grad = gg.to(device)
                o_cpu.step()
                o_dev.step()
            for a, b in zip(p_dev, p_cpu, strict=True):
                self.assertEqual(a.detach().cpu(), b.detach(), atol=1e-5, rtol=1e-5, msg=name)
            fallbacks = {k: v for k, v in rustorch_device.op_stats().items() if v["fallback"]}
            fallbacks.pop("aten::_to_copy", None)  # the test's own .to(device) of gradients
            self.assertEqual(fallbacks, {}, f"{name} step fell back")


instantiate_device_type_tests(TestTrainingOps, globals(), only_for="rustorch")
instantiate_device_type_tests(TestLossGradcheck, globals(), only_for="rustorch")
instantiate_device_type_tests(TestDropout, globals(), only_for="rustorch")
instantiate_device_type_tests(TestForeach, globals(), only_for="rustorch")
