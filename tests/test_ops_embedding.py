"""nn.functional.embedding on rustorch against CPU ATen, driven by PyTorch's OpInfo database
(padding_idx, scale_grad_by_freq, max_norm; float32/float64): outputs and weight gradients must
match CPU, forward and dense backward must run natively, and the backward (repeated indices,
accumulated without atomics) must be bit-identical at 1 and 2 threads."""

import rustorch_device  # noqa: I001  (registers the device before torch.testing._internal)
import torch
import torch.nn.functional as F
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase

from opinfo_helpers import assert_ran_natively, compare_with_cpu, samples

EMB_OPS = [op for op in op_db if op.name == "nn.functional.embedding"]
TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10)}
NATIVE = ("aten::embedding", "aten::embedding_dense_backward")


class TestEmbeddingOps(TestCase):
    @ops(EMB_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, atol, rtol)
        assert_ran_natively(self, NATIVE)

    def test_out_of_range_index_raises(self, device):
        w = torch.randn(5, 3, device=device)
        with self.assertRaisesRegex(IndexError, "index out of range"):
            F.embedding(torch.tensor([1, 5], device=device), w)

    def test_backward_bit_identical_at_one_and_two_threads(self, device):
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(0, 50, (64, 40), generator=gen).to(device)  # many repeats per row
        grad = torch.randn(64, 40, 32, generator=gen).to(device)
        before = torch.get_num_threads()
        results = []
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                w = torch.randn(50, 32, generator=torch.Generator().manual_seed(1)).to(device)
                w.requires_grad_()
                F.embedding(idx, w, padding_idx=3).backward(grad)
                results.append(w.grad.cpu())
        finally:
            torch.set_num_threads(before)
        self.assertTrue(torch.equal(results[0], results[1]))
        self.assertTrue(torch.equal(results[0][3], torch.zeros(32)))


instantiate_device_type_tests(TestEmbeddingOps, globals(), only_for="rustorch")
