"""GEMM-family ops on the rustorch device against CPU ATen: OpInfo samples (outputs and input
gradients, float32 and float64), gradcheck in float64, out= variants, fallback and errors."""

import rustorch_device  # noqa: F401, I001  (before torch.testing._internal: NATIVE_DEVICES)
import torch
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase, run_tests

from opinfo_helpers import compare_with_cpu, samples

# Every op whose device kernel is (or decomposes into) our mm/addmm/bmm/baddbmm.
GEMM_OP_NAMES = {"mm", "addmm", "bmm", "baddbmm", "matmul", "nn.functional.linear"}
# bmm's "triton_optimized" variant is a CUDA-only OpInfo (it skips itself elsewhere): left out.
GEMM_OPS = [
    op for op in op_db if op.name in GEMM_OP_NAMES and op.variant_test_name != "triton_optimized"
]
TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-7, 1e-7)}
DEV = "rustorch"


class TestGemmOps(TestCase):
    @ops(GEMM_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)


instantiate_device_type_tests(TestGemmOps, globals(), only_for="rustorch")


class TestGemmDevice(TestCase):
    def test_gradcheck_float64(self):
        torch.manual_seed(0)

        def leaf(*shape):
            return torch.randn(*shape, dtype=torch.float64, device=DEV, requires_grad=True)

        a, b, bias = leaf(5, 7), leaf(7, 4), leaf(4)
        x, y, z = leaf(3, 4, 6), leaf(3, 6, 2), leaf(3, 4, 2)
        self.assertTrue(torch.autograd.gradcheck(torch.mm, (a, b)))
        self.assertTrue(
            torch.autograd.gradcheck(
                lambda s, p, q: torch.addmm(s, p, q, beta=0.5, alpha=2), (bias, a, b)
            )
        )
        self.assertTrue(torch.autograd.gradcheck(torch.bmm, (x, y)))
        self.assertTrue(
            torch.autograd.gradcheck(lambda s, p, q: torch.baddbmm(s, p, q, alpha=-1), (z, x, y))
        )
        self.assertTrue(torch.autograd.gradgradcheck(torch.mm, (a, b)))

    def test_native_kernels_are_used(self):
        a, b = torch.randn(8, 9, device=DEV), torch.randn(9, 3, device=DEV)
        rustorch_device.reset_op_stats()
        torch.nn.functional.linear(a, b.t(), torch.randn(3, device=DEV)).sum()
        torch.bmm(a[None], b[None])
        stats = rustorch_device.op_stats()
        self.assertEqual(stats["aten::addmm"], {"native": 1, "fallback": 0})
        self.assertEqual(stats["aten::bmm"], {"native": 1, "fallback": 0})

    def test_out_variants(self):
        a, b, bias = (
            torch.randn(6, 5, device=DEV),
            torch.randn(5, 4, device=DEV),
            torch.randn(6, 4, device=DEV),
        )
        out = torch.empty(0, device=DEV)
        torch.mm(a, b, out=out)
        self.assertEqual(out.cpu(), a.cpu() @ b.cpu())
        out = torch.empty(4, 6, device=DEV).t()
        torch.addmm(bias, a, b, beta=2, out=out)
        self.assertEqual(out.cpu(), torch.addmm(bias.cpu(), a.cpu(), b.cpu(), beta=2))
        x, y = torch.randn(2, 3, 4, device=DEV), torch.randn(2, 4, 5, device=DEV)
        out = torch.empty(2, 3, 5, device=DEV)
        torch.bmm(x, y, out=out)
        self.assertEqual(out.cpu(), torch.bmm(x.cpu(), y.cpu()))
        acc = torch.randn(2, 3, 5, device=DEV)
        expect = torch.baddbmm(acc.cpu(), x.cpu(), y.cpu(), beta=0.5)
        acc.baddbmm_(x, y, beta=0.5)
        self.assertEqual(acc.cpu(), expect)

    def test_unsupported_dtype_falls_back(self):
        a = torch.randint(-5, 5, (4, 3), device=DEV)
        b = torch.randint(-5, 5, (3, 2), device=DEV)
        rustorch_device.reset_op_stats()
        self.assertEqual(torch.mm(a, b).cpu(), a.cpu() @ b.cpu())
        self.assertEqual(rustorch_device.op_stats()["aten::mm"], {"native": 0, "fallback": 1})

    def test_errors(self):
        with self.assertRaisesRegex(RuntimeError, "cannot be multiplied"):
            torch.mm(torch.randn(3, 4, device=DEV), torch.randn(5, 6, device=DEV))
        with self.assertRaisesRegex(RuntimeError, "dtype"):
            torch.mm(
                torch.randn(3, 4, device=DEV), torch.randn(4, 6, device=DEV, dtype=torch.float64)
            )


if __name__ == "__main__":
    run_tests()
