"""Ops stock PyTorch reaches only on non-CPU devices (issue 11, item 2).

1. The class of aten ops with a CUDA kernel and no CPU or composite kernel is recomputed from
   the dispatcher and must be fully classified in rustorch_device.device_only_ops (a torch
   upgrade that adds one fails here); the ones stock code reaches have rustorch kernels.
2. The others fail with a message naming the op and the rustorch device, not "the CPU backend".
3. Non-CPU branches of torch.nn / optim whose ops have CPU kernels (fused optimizers, SDPA's
   backend choice, the Transformer / MHA fast paths) run on rustorch and match CPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rustorch_device
from rustorch_device import device_only_ops

DEV = "rustorch"


def test_cuda_only_ops_are_all_classified():
    table = device_only_ops.table()
    assert len(table) >= 80  # the class as of torch 2.14.1: 92 ops
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    for op, (status, _why) in table.items():
        served = has(f"aten::{op}", "PrivateUse1")
        assert served == (status == "native"), f"{op}: status {status}, rustorch kernel {served}"
    natives = {op for op, (s, _) in table.items() if s == "native"}
    assert {"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "batch_norm_stats"} <= natives


UNSERVED_CALLS = {
    "_fused_dropout": lambda x: torch.ops.aten._fused_dropout(x, 0.5),
    "_masked_scale": lambda x: torch.ops.aten._masked_scale(x, x > 0, 2.0),
    "mm.dtype": lambda x: torch.ops.aten.mm.dtype(x, x, torch.float32),
    "cudnn_batch_norm": lambda x: torch.ops.aten.cudnn_batch_norm(
        x, torch.ones(4, device=DEV), None, None, None, True, 0.1, 1e-5),
    "_cudnn_rnn_flatten_weight": lambda x: torch.ops.aten._cudnn_rnn_flatten_weight(
        [x], 1, 4, 0, 4, 0, 1, False, False),
    "_weight_int4pack_mm": lambda x: torch.ops.aten._weight_int4pack_mm(
        x.bfloat16(), torch.zeros(1, 1, 32, 4, dtype=torch.int32, device=DEV), 32,
        torch.zeros(1, 4, 2, device=DEV)),
}


@pytest.mark.parametrize("op", sorted(UNSERVED_CALLS))
def test_unserved_op_names_op_and_device(op):
    status, _ = device_only_ops.classify(op)
    assert status != "native"
    x = torch.randn(4, 4, device=DEV)
    with pytest.raises(NotImplementedError) as info:
        UNSERVED_CALLS[op](x)
    msg = str(info.value)
    assert f"aten::{op} is not supported on rustorch:0" in msg, msg
    assert "'CPU' backend" not in msg


def _fallback_calls(op: str) -> int:
    return rustorch_device.op_stats().get(op, {}).get("fallback", 0)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "Adagrad"])
def test_fused_optimizers_match_cpu(name):
    torch.manual_seed(0)
    p0 = torch.randn(10, dtype=torch.float64)
    grads = [torch.randn(10, dtype=torch.float64) for _ in range(3)]

    def run(device):
        p = p0.clone().to(device).requires_grad_()
        kw = {"momentum": 0.9} if name == "SGD" else {}
        opt = getattr(torch.optim, name)([p], lr=0.1, fused=True, **kw)
        for g in grads:
            p.grad = g.to(device)
            opt.step()
        return p.detach().cpu()

    torch.testing.assert_close(run(DEV), run("cpu"), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"mask": True}])
def test_sdpa_matches_cpu(kwargs):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(5, 5) > 0.3 if kwargs.get("mask") else None
    mask = mask | torch.eye(5, dtype=torch.bool) if mask is not None else None

    def run(device):
        ts = [t.detach().to(device).requires_grad_() for t in (q, k, v)]
        am = mask.to(device) if mask is not None else None
        out = F.scaled_dot_product_attention(*ts, attn_mask=am,
                                             is_causal=kwargs.get("is_causal", False))
        out.pow(2).sum().backward()
        return [out.detach().cpu(), *(t.grad.cpu() for t in ts)]

    for d, c in zip(run(DEV), run("cpu"), strict=True):
        torch.testing.assert_close(d, c, atol=1e-10, rtol=1e-10)


def test_transformer_and_mha_fast_paths_match_cpu():
    torch.manual_seed(2)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    before_layer = _fallback_calls("aten::_transformer_encoder_layer_fwd")
    before_mha = _fallback_calls("aten::_native_multi_head_attention")
    with torch.no_grad():
        out_d = copy.deepcopy(layer).to(DEV)(x.to(DEV)).cpu()
        xd = x.to(DEV)
        att_d, w_d = copy.deepcopy(mha).to(DEV)(xd, xd, xd)
        out_c = layer(x)
        att_c, w_c = mha(x, x, x)
    torch.testing.assert_close(out_d, out_c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att_d.cpu(), att_c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_d.cpu(), w_c, atol=1e-5, rtol=1e-5)
    # The fast paths were taken on rustorch (their ops ran on the CPU fallback).
    assert _fallback_calls("aten::_transformer_encoder_layer_fwd") > before_layer
    assert _fallback_calls("aten::_native_multi_head_attention") > before_mha
