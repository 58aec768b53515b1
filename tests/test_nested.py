"""Nested tensors on rustorch (issue 11, item 7): the Transformer fast path with a padding mask
and basic torch.nested ops match CPU; ops CPU has no nested kernel for fail clearly."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rustorch_device

DEV = "rustorch"
warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")


def _fallback_calls(op: str) -> int:
    return rustorch_device.op_stats().get(op, {}).get("fallback", 0)


@pytest.mark.parametrize("layers", [1, 2])
def test_transformer_encoder_nested_fast_path_matches_cpu(layers):
    """eval + no_grad + src_key_padding_mask: TransformerEncoder turns the batch into a nested
    tensor (enable_nested_tensor=True by default) and runs the fused layer on it."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
    enc = nn.TransformerEncoder(layer, layers).eval()
    x = torch.randn(3, 5, 16)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    before = _fallback_calls("aten::_nested_tensor_from_mask")
    with torch.no_grad():
        out_c = enc(x, src_key_padding_mask=mask)
        out_d = copy.deepcopy(enc).to(DEV)(x.to(DEV), src_key_padding_mask=mask.to(DEV))
    assert out_d.device.type == DEV
    torch.testing.assert_close(out_d.cpu(), out_c, atol=1e-5, rtol=1e-5)
    assert _fallback_calls("aten::_nested_tensor_from_mask") > before  # the nested path ran


A = [torch.randn(2, 3), torch.randn(4, 3)]
B = [torch.randn(3, 2), torch.randn(3, 5)]
OPS = {
    "relu": lambda a, b: a.relu(),
    "add": lambda a, b: a + a,
    "mul_scalar": lambda a, b: a * 2.0,
    "softmax": lambda a, b: a.softmax(-1),
    "matmul": lambda a, b: torch.matmul(a, b),
    "linear": lambda a, b: F.linear(a, torch.ones(4, 3, device=a.device)),
    "gelu": lambda a, b: F.gelu(a),
    "transpose": lambda a, b: a.transpose(1, 2).contiguous(),
    "to_padded": lambda a, b: torch.nested.to_padded_tensor(a, -1.0),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_nested_op_matches_cpu(name):
    a_c, b_c = torch.nested.nested_tensor(A), torch.nested.nested_tensor(B)
    a_d = torch.nested.nested_tensor(A, device=DEV)
    b_d = torch.nested.nested_tensor(B, device=DEV)
    got, want = OPS[name](a_d, b_d), OPS[name](a_c, b_c)
    assert got.device.type == DEV and got.is_nested == want.is_nested
    if want.is_nested:
        for g, w in zip(got.unbind(), want.unbind(), strict=True):
            assert g.device.type == DEV
            torch.testing.assert_close(g.cpu(), w)
    else:
        torch.testing.assert_close(got.cpu(), want)


def test_nested_in_place_op_writes_the_device_tensor():
    nt = torch.nested.nested_tensor(A, device=DEV)
    out = nt.mul_(0.0)
    assert out is nt
    assert all(bool((t == 0).all()) for t in nt.unbind())


def test_jagged_layout_runs_on_device():
    nt = torch.nested.nested_tensor(A, layout=torch.jagged, device=DEV)
    ref = torch.nested.nested_tensor(A, layout=torch.jagged)
    torch.testing.assert_close(nt.relu().values().cpu(), ref.relu().values())


def test_unsupported_nested_op_fails_clearly():
    nt = torch.nested.nested_tensor(A, device=DEV)
    with pytest.raises(NotImplementedError,
                       match="aten::erfinv is not supported for nested tensors on rustorch:0"):
        torch.ops.aten.erfinv(nt)
