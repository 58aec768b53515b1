"""Convolution on the rustorch device against CPU ATen: OpInfo samples of conv1d/conv2d
(outputs and input gradients, float32 and float64; includes stride, padding incl. 'same',
dilation, groups, non-contiguous inputs), gradcheck and double backward in float64, and the
fallback for transposed and 3-D convolutions."""

import rustorch_device  # noqa: F401, I001  (before torch.testing._internal: NATIVE_DEVICES)
import torch
import torch.nn.functional as F
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase, run_tests

from opinfo_helpers import compare_with_cpu, samples

CONV_OPS = [op for op in op_db if op.name in {"nn.functional.conv2d", "nn.functional.conv1d"}]
TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-7, 1e-7)}
DEV = "rustorch"


class TestConvOps(TestCase):
    @ops(CONV_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)


instantiate_device_type_tests(TestConvOps, globals(), only_for="rustorch")


class TestConvDevice(TestCase):
    def leaf(self, *shape):
        return torch.randn(*shape, dtype=torch.float64, device=DEV, requires_grad=True)

    def test_gradcheck_and_double_backward_float64(self):
        torch.manual_seed(0)
        x, w, b = self.leaf(2, 4, 6, 5), self.leaf(6, 2, 3, 2), self.leaf(6)

        def conv(x, w, b):
            return F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)

        self.assertTrue(torch.autograd.gradcheck(conv, (x, w, b)))
        self.assertTrue(torch.autograd.gradgradcheck(conv, (x, w, b)))
        same = lambda x, w: F.conv2d(x, w, padding="same")  # noqa: E731
        self.assertTrue(torch.autograd.gradcheck(same, (x, self.leaf(3, 4, 2, 3))))

    def test_batched_and_per_image_paths(self):
        # Small maps (oh*ow <= 128, batch > 1) run one GEMM over the batch; larger maps and
        # single images one GEMM per image. Both match CPU and are bit-identical at 1 and 2
        # threads (ResNet's late stages: 4x4 and 2x2 maps, stride 2, 1x1 downsampling).
        torch.manual_seed(0)
        cases = [
            ((16, 32, 4, 4), (32, 32, 3, 3), dict(padding=1)),
            ((5, 16, 5, 3), (24, 8, 3, 3), dict(stride=2, padding=1, groups=2)),
            ((3, 16, 8, 8), (32, 16, 1, 1), dict(stride=2)),
            ((4, 8, 4, 4), (8, 8, 1, 1), {}),
            ((2, 3, 20, 20), (8, 3, 3, 3), dict(padding=1, dilation=2)),
            ((1, 8, 6, 6), (8, 8, 3, 3), dict(padding=1)),
        ]
        for xs, ws, kw in cases:
            x, w, b = (torch.randn(s).requires_grad_() for s in (xs, ws, ws[:1]))
            ref = F.conv2d(x, w, b, **kw)
            g = torch.randn(ref.shape)
            ref_grads = torch.autograd.grad(ref, (x, w, b), g)
            runs = []
            for threads in (1, 2):
                prev = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    xd, wd, bd = (v.detach().to(DEV).requires_grad_() for v in (x, w, b))
                    out = F.conv2d(xd, wd, bd, **kw)
                    grads = torch.autograd.grad(out, (xd, wd, bd), g.to(DEV))
                finally:
                    torch.set_num_threads(prev)
                runs.append([t.cpu() for t in (out, *grads)])
            for got, want in zip(runs[0], [ref.detach(), *ref_grads], strict=True):
                self.assertEqual(got, want, atol=1e-4, rtol=1e-4)
            for a, b_ in zip(runs[0], runs[1], strict=True):
                self.assertEqual(a, b_, atol=0, rtol=0)

    def test_native_kernels_are_used(self):
        x = torch.randn(2, 3, 8, 8, device=DEV, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, device=DEV, requires_grad=True)
        rustorch_device.reset_op_stats()
        F.conv2d(x, w).sum().backward()
        stats = rustorch_device.op_stats()
        self.assertEqual(stats["aten::convolution"], {"native": 1, "fallback": 0})
        self.assertEqual(stats["aten::convolution_backward"], {"native": 1, "fallback": 0})

    def test_transposed_and_3d_fall_back_correctly(self):
        torch.manual_seed(0)
        cases = [
            (F.conv_transpose2d, torch.randn(2, 4, 5, 5), torch.randn(4, 3, 3, 3)),
            (F.conv3d, torch.randn(1, 2, 4, 4, 4), torch.randn(3, 2, 2, 2, 2)),
        ]
        for fn, x, w in cases:
            xd, wd = x.to(DEV).requires_grad_(), w.to(DEV).requires_grad_()
            xc, wc = x.clone().requires_grad_(), w.clone().requires_grad_()
            out, ref = fn(xd, wd), fn(xc, wc)
            self.assertEqual(out.cpu(), ref, atol=1e-4, rtol=1e-4)
            out.sum().backward()
            ref.sum().backward()
            self.assertEqual(xd.grad.cpu(), xc.grad, atol=1e-4, rtol=1e-4)
            self.assertEqual(wd.grad.cpu(), wc.grad, atol=1e-4, rtol=1e-4)

    def test_errors(self):
        with self.assertRaisesRegex(RuntimeError, "channels"):
            F.conv2d(torch.randn(1, 4, 5, 5, device=DEV), torch.randn(2, 3, 3, 3, device=DEV))
        with self.assertRaisesRegex(RuntimeError, "[Kk]ernel size"):
            F.conv2d(torch.randn(1, 3, 2, 2, device=DEV), torch.randn(2, 3, 3, 3, device=DEV))


if __name__ == "__main__":
    run_tests()
