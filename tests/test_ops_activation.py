"""Activations on rustorch against CPU ATen, driven by PyTorch's OpInfo database: gelu (exact
and tanh), silu, tanh, sigmoid in float32/float64; outputs and input gradients must match CPU
and the forward and backward must have run on the native kernels (op_stats)."""

import rustorch_device  # noqa: I001  (registers the device before torch.testing._internal)
import torch
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase

from opinfo_helpers import assert_ran_natively, compare_with_cpu, samples

NATIVE = {
    "nn.functional.gelu": ("aten::gelu.out", "aten::gelu_backward.grad_input"),
    # silu_backward is CompositeImplicitAutograd (sigmoid, mul, add: native ops as well).
    "nn.functional.silu": ("aten::silu.out",),
    "tanh": ("aten::tanh.out", "aten::tanh_backward.grad_input"),
    "sigmoid": ("aten::sigmoid.out", "aten::sigmoid_backward.grad_input"),
}
ACT_OPS = [op for op in op_db if op.name in NATIVE and op.variant_test_name == ""]
TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-7, 1e-7)}


class TestActivationOps(TestCase):
    @ops(ACT_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)
        assert_ran_natively(self, NATIVE[op.name])

    def test_in_place_forms(self, device):
        x = torch.randn(5, 7)
        for fn in (torch.sigmoid_, torch.tanh_):
            xd = x.to(device)
            fn(xd)
            torch.testing.assert_close(xd.cpu(), fn(x.clone()))


instantiate_device_type_tests(TestActivationOps, globals(), only_for="rustorch")
