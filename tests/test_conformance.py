"""Bounded conformance sweeps (issue 11): a fixed, representative slice of PyTorch's OpInfo and
ModuleInfo databases on rustorch against CPU, through the same harness as the full sweeps
(benchmarks/conformance/opinfo_sweep.py, moduleinfo_sweep.py): outputs and gradients, every
dtype of the issue for ops, train and eval for modules; each case in a watched subprocess.
Unexpected failures, crashes, hangs and harness errors all fail the test.
"""

from __future__ import annotations

import sys

from device_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks" / "conformance"))
import sweep as conformance  # noqa: E402

OPS = ["add", "mul", "div.no_rounding_mode", "sum", "softmax", "nn.functional.gelu", "matmul",
       "addmm", "nn.functional.conv2d", "nn.functional.layer_norm",
       "nn.functional.cross_entropy", "nn.functional.max_pool2d", "nn.functional.embedding",
       "index_put", "gather", "scatter_add", "sort", "cumsum", "where", "masked_fill",
       "bernoulli", "linalg.solve", "fft.fft", "nonzero"]
MODULES = ["nn.Linear", "nn.Conv2d", "nn.LSTM", "nn.GRU", "nn.BatchNorm2d", "nn.LayerNorm",
           "nn.TransformerEncoderLayer", "nn.MultiheadAttention", "nn.Embedding",
           "nn.CrossEntropyLoss"]


def _check(res: dict) -> None:
    assert not res["crashes"] and not res["hangs"] and not res["errors"], res
    assert res["failed"] == 0, res["failures"]
    assert res["samples"] > 0 and res["passed"] > 0.9 * res["samples"], res


def test_opinfo_slice():
    res = conformance.sweep("opinfo", OPS, list(conformance.DTYPE_NAMES), max_samples=2,
                            timeout=240)
    _check(res)


def test_moduleinfo_slice():
    res = conformance.sweep("moduleinfo", MODULES, ["float32"], max_samples=2, timeout=240)
    _check(res)
