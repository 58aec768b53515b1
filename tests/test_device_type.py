"""PyTorch's device-generic test machinery instantiated for rustorch."""

from __future__ import annotations

# isort: off
import torch
import rustorch_device  # noqa: F401  (register before torch.testing._internal is imported)
from torch.testing._internal.common_device_type import instantiate_device_type_tests
from torch.testing._internal.common_utils import TestCase
# isort: on

DTYPES = [torch.float32, torch.float64, torch.int64, torch.bool, torch.bfloat16, torch.complex64]


class TestRustorchDeviceType(TestCase):
    def test_transfer(self, device):
        for dtype in DTYPES:
            cpu = torch.testing.make_tensor((3, 5), dtype=dtype, device="cpu")
            dev = cpu.to(device)
            self.assertEqual(dev.device.type, "rustorch")
            self.assertEqual(dev.cpu(), cpu)
            self.assertEqual(dev.t().cpu(), cpu.t())

    def test_clone(self, device):
        for dtype in DTYPES:
            src = torch.testing.make_tensor((4, 6), dtype=dtype, device=device)
            for view in (src, src[:, ::2], src.t()):
                out = view.clone()
                self.assertEqual(out.device, view.device)
                self.assertNotEqual(out.data_ptr(), view.data_ptr())
                self.assertEqual(out.cpu(), view.cpu())
            kept = src.t().clone(memory_format=torch.preserve_format)
            self.assertEqual(kept.stride(), src.t().stride())

    def test_copy_(self, device):
        for dtype in DTYPES:
            src = torch.testing.make_tensor((4, 6), dtype=dtype, device=device)
            dst = torch.empty(6, 4, dtype=dtype, device=device)
            dst.copy_(src.t())
            self.assertEqual(dst.cpu(), src.cpu().t())
            dst_cpu = torch.empty(4, 6, dtype=dtype)
            dst_cpu.copy_(src)
            self.assertEqual(dst_cpu, src.cpu())
            to_double = torch.empty(4, 6, dtype=torch.complex128 if dtype.is_complex
                                    else torch.float64, device=device)
            to_double.copy_(src)
            self.assertEqual(to_double.cpu(), src.cpu().to(to_double.dtype))

    def test_factories(self, device):
        self.assertEqual(torch.zeros(3, device=device).cpu(), torch.zeros(3))
        self.assertEqual(torch.full((2, 2), 7, device=device).cpu(), torch.full((2, 2), 7))
        self.assertEqual(torch.arange(5, device=device).cpu(), torch.arange(5))
        self.assertEqual(torch.eye(3, device=device).cpu(), torch.eye(3))


instantiate_device_type_tests(TestRustorchDeviceType, globals(), only_for="rustorch")
