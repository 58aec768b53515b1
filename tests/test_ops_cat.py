"""torch.cat on rustorch against CPU ATen, driven by PyTorch's OpInfo database (float32,
float64; negative dims, empty and legacy-empty inputs, non-contiguous inputs):
outputs and gradients must match CPU, and cat.out must have run natively for the plain cases
(the rest goes to CPU's kernel, counted as fallback); out= into a wrong-sized tensor resizes it
as on CPU; int64 and bool rows are copied as bytes."""

import rustorch_device  # noqa: I001  (registers the device before torch.testing._internal)
import torch
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase

from opinfo_helpers import compare_with_cpu, samples

CAT_OPS = [op for op in op_db if op.name == "cat"]


class TestCatOps(TestCase):
    @ops(CAT_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        rustorch_device.reset_op_stats()
        for sample in samples(op, device, dtype):
            compare_with_cpu(self, op, sample, 0, 0)
        self.assertGreater(rustorch_device.op_stats()["aten::cat.out"]["native"], 0)

    def test_out_of_wrong_size_and_lstm_outputs(self, device):
        a, b = torch.randn(2, 3), torch.randn(4, 3)
        out = torch.empty(1, device=device)
        torch.cat([a.to(device), b.to(device)], 0, out=out)
        self.assertEqual(out.cpu(), torch.cat([a, b]))
        for x in (torch.arange(12).view(3, 4), torch.arange(12).view(3, 4) % 3 == 0):
            y = x.to(device)
            self.assertEqual(torch.cat([y, y[:, :1]], -1).cpu(), torch.cat([x, x[:, :1]], -1))
        rustorch_device.reset_op_stats()
        lstm = torch.nn.LSTM(8, 8, num_layers=2).to(device)
        lstm(torch.randn(5, 3, 8, device=device))[0].sum().backward()
        stats = rustorch_device.op_stats()
        self.assertEqual(stats["aten::cat.out"]["fallback"], 0)
        self.assertGreater(stats["aten::cat.out"]["native"], 0)


instantiate_device_type_tests(TestCatOps, globals(), only_for="rustorch")
