"""Recurrent nets on rustorch: nn.LSTM / GRU / LSTMCell / GRUCell against CPU.

On a non-CPU device ATen's cells call the fused ops aten::_thnn_fused_lstm_cell /
_thnn_fused_gru_cell (CUDA-only in PyTorch); rustorch serves them natively
(cpp_ext/aten/native/rnn_cells.cpp). Outputs, final states and every gradient (inputs, initial
states, all parameters) must match the same module on CPU within 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rustorch_device  # noqa: F401  (registers the device)

DEV = "rustorch"
TOL = dict(atol=1e-5, rtol=1e-5)


def _grads(module: nn.Module, *tensors: torch.Tensor) -> list[torch.Tensor]:
    out = [p.grad for p in module.parameters()] + [t.grad for t in tensors]
    assert all(g is not None for g in out), "a gradient is missing"
    return [g.cpu() for g in out]


def _assert_close(dev: list[torch.Tensor], cpu: list[torch.Tensor]) -> None:
    assert len(dev) == len(cpu)
    for d, c in zip(dev, cpu, strict=True):
        assert d.device.type == "cpu" and c.device.type == "cpu"
        torch.testing.assert_close(d, c, **TOL)


def _run_seq(module: nn.Module, x: torch.Tensor, state, device: str):
    m = copy.deepcopy(module).to(device)
    xs = x.detach().to(device).requires_grad_()
    st = None
    if state is not None:
        st = tuple(s.detach().to(device).requires_grad_() for s in state)
        st_arg = st if isinstance(module, nn.LSTM) else st[0]
    out, final = m(xs, st_arg if st is not None else None)
    finals = final if isinstance(final, tuple) else (final,)
    loss = out.pow(2).sum() + sum((f * (i + 2)).sum() for i, f in enumerate(finals))
    loss.backward()
    leaves = [xs, *(st or ())]
    return [out.detach().cpu(), *(f.detach().cpu() for f in finals)], _grads(m, *leaves)


CONFIGS = [
    # (kind, num_layers, bidirectional, batch_first, proj_size, with initial state, bias)
    ("LSTM", 1, False, False, 0, False, True),
    ("LSTM", 2, True, True, 0, True, True),
    ("LSTM", 2, True, False, 3, True, True),
    ("LSTM", 1, False, True, 0, True, False),
    ("GRU", 1, False, False, 0, False, True),
    ("GRU", 3, True, True, 0, True, True),
    ("GRU", 1, False, False, 0, True, False),
]


@pytest.mark.parametrize("kind,layers,bidir,batch_first,proj,with_state,bias", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_recurrent_layer_matches_cpu(kind, layers, bidir, batch_first, proj, with_state, bias,
                                     dtype):
    torch.manual_seed(0)
    kwargs = dict(num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias)
    if proj:
        kwargs["proj_size"] = proj
    module = getattr(nn, kind)(5, 7, **kwargs).to(dtype)
    seq, batch = 4, 3
    x = torch.randn((batch, seq, 5) if batch_first else (seq, batch, 5), dtype=dtype)
    state = None
    if with_state:
        dirs = 2 if bidir else 1
        h = torch.randn(layers * dirs, batch, proj or 7, dtype=dtype)
        state = (h, torch.randn(layers * dirs, batch, 7, dtype=dtype)) if kind == "LSTM" else (h,)
    before = rustorch_device.op_stats()
    out_d, grads_d = _run_seq(module, x, state, DEV)
    out_c, grads_c = _run_seq(module, x, state, "cpu")
    _assert_close(out_d, out_c)
    _assert_close(grads_d, grads_c)
    # The fused cell and its backward ran natively.
    after = rustorch_device.op_stats()
    cell = "aten::_thnn_fused_lstm_cell" if kind == "LSTM" else "aten::_thnn_fused_gru_cell"
    bwd = ("aten::_thnn_fused_lstm_cell_backward_impl" if kind == "LSTM"
           else "aten::_thnn_fused_gru_cell_backward")
    for op in (cell, bwd):
        ran = after.get(op, {}).get("native", 0) - before.get(op, {}).get("native", 0)
        assert ran >= seq * layers, f"{op} ran natively {ran} times"


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_cpu(kind, bias):
    torch.manual_seed(1)
    cell = getattr(nn, kind)(6, 4, bias=bias).double()
    x = torch.randn(5, 6, dtype=torch.double)
    h = torch.randn(5, 4, dtype=torch.double)
    c = torch.randn(5, 4, dtype=torch.double)

    def run(device):
        m = copy.deepcopy(cell).to(device)
        xs, hs, cs = (t.detach().to(device).requires_grad_() for t in (x, h, c))
        if kind == "LSTMCell":
            hy, cy = m(xs, (hs, cs))
            (hy.sin().sum() + (cy * 3).sum()).backward()
            return [hy.detach().cpu(), cy.detach().cpu()], _grads(m, xs, hs, cs)
        hy = m(xs, hs)
        hy.sin().sum().backward()
        return [hy.detach().cpu()], _grads(m, xs, hs)

    out_d, g_d = run(DEV)
    out_c, g_c = run("cpu")
    _assert_close(out_d, out_c)
    _assert_close(g_d, g_c)


def test_lstm_cell_only_hidden_gradient():
    """Only hy feeds the loss (grad_cy undefined) and unbatched input."""
    torch.manual_seed(2)
    cell = nn.LSTMCell(3, 4)
    x = torch.randn(3)

    def run(device):
        m = copy.deepcopy(cell).to(device)
        xs = x.detach().to(device).requires_grad_()
        hy, _ = m(xs)
        hy.sum().backward()
        return [hy.detach().cpu()], _grads(m, xs)

    out_d, g_d = run(DEV)
    out_c, g_c = run("cpu")
    _assert_close(out_d, out_c)
    _assert_close(g_d, g_c)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_packed_sequence_with_dropout_matches_cpu(kind):
    """Packed variable-length batches; dropout between layers (eval: no dropout, train: same
    seed -> compare only shapes and finiteness, since masks come from different streams)."""
    torch.manual_seed(3)
    module = getattr(nn, kind)(4, 6, num_layers=2, dropout=0.3, batch_first=True)
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 3, 2])

    def run(device, train):
        m = copy.deepcopy(module).to(device).train(train)
        xs = x.detach().to(device).requires_grad_()
        packed = pack_padded_sequence(xs, lengths, batch_first=True)
        out, _ = m(packed)
        padded, out_len = pad_packed_sequence(out, batch_first=True)
        padded.pow(2).sum().backward()
        return padded.detach().cpu(), _grads(m, xs), out_len

    out_d, g_d, len_d = run(DEV, False)
    out_c, g_c, len_c = run("cpu", False)
    torch.testing.assert_close(out_d, out_c, **TOL)
    _assert_close(g_d, g_c)
    assert torch.equal(len_d, len_c)
    out_t, g_t, _ = run(DEV, True)
    assert out_t.shape == out_c.shape and torch.isfinite(out_t).all()
    assert all(torch.isfinite(g).all() for g in g_t)


def test_double_backward_uses_differentiable_cell():
    """create_graph=True takes the composite differentiable backward; it must match CPU."""
    torch.manual_seed(4)
    cell = nn.GRUCell(3, 3).double()
    x = torch.randn(2, 3, dtype=torch.double)

    def run(device):
        m = copy.deepcopy(cell).to(device)
        xs = x.detach().to(device).requires_grad_()
        (gx,) = torch.autograd.grad(m(xs).pow(2).sum(), xs, create_graph=True)
        gx.sum().backward()
        return [gx.detach().cpu()], _grads(m, xs)

    out_d, g_d = run(DEV)
    out_c, g_c = run("cpu")
    _assert_close(out_d, out_c)
    _assert_close(g_d, g_c)


def test_bfloat16_lstm_runs_close_to_cpu():
    torch.manual_seed(5)
    module = nn.LSTM(8, 8).to(torch.bfloat16)
    x = torch.randn(3, 2, 8, dtype=torch.bfloat16)
    out_d, _ = copy.deepcopy(module).to(DEV)(x.to(DEV))
    out_c, _ = module(x)
    torch.testing.assert_close(out_d.cpu(), out_c, atol=2e-2, rtol=2e-2)


def test_fused_cell_shape_errors_are_clear():
    gates = torch.zeros(2, 8, device=DEV)
    with pytest.raises(RuntimeError, match="_thnn_fused_lstm_cell: expected the previous state"):
        torch.ops.aten._thnn_fused_lstm_cell(gates, gates, torch.zeros(2, 3, device=DEV))
    with pytest.raises(RuntimeError, match="same size"):
        torch.ops.aten._thnn_fused_gru_cell(gates[:, :6], gates[:, :3], torch.zeros(2, 2, device=DEV))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_vectorized_cells_match_cpu(kind):
    """float32 with hidden 20: two full 8-wide column blocks and a masked tail of 4 per gate."""
    torch.manual_seed(6)
    module = getattr(nn, kind)(9, 20, num_layers=2)
    x = torch.randn(5, 4, 9) * 3
    out_d, grads_d = _run_seq(module, x, None, DEV)
    out_c, grads_c = _run_seq(module, x, None, "cpu")
    _assert_close(out_d, out_c)
    _assert_close(grads_d, grads_c)


def _lstm_cell_reference(ig, hg, cx):
    i, f, g, o = (ig.double() + hg.double()).chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    cy = f * cx.double() + i * g
    return o * cy.tanh(), cy


def test_fused_lstm_cell_saturation_and_nan():
    """Large pre-activations saturate to exactly 0/1 (no inf/NaN from exp overflow), tiny ones
    keep their relative accuracy (tanh near 0), NaN propagates to its own column only."""
    h = 19  # two 8-wide blocks and a tail of 3
    vals = torch.tensor([-1e4, -100.0, -88.5, -20.0, -1.0, -1e-6, 0.0, 1e-6, 0.5, 0.7, 1.0, 9.0,
                         20.0, 88.5, 100.0, 1e4, 3e-3, -0.62, 0.63])
    ig = vals.repeat(3, 4).reshape(3, 4 * h)
    hg = torch.zeros(3, 4 * h)
    cx = vals.flip(0).repeat(3, 1)
    ig[2, 5] = float("nan")  # the input gate of column 5 in row 2
    hy, cy, _ = torch.ops.aten._thnn_fused_lstm_cell(ig.to(DEV), hg.to(DEV), cx.to(DEV))
    ref_h, ref_c = _lstm_cell_reference(ig, hg, cx)
    hy, cy = hy.cpu(), cy.cpu()
    nan = torch.zeros(3, h, dtype=torch.bool)
    nan[2, 5] = True
    assert torch.equal(hy.isnan(), nan) and torch.equal(cy.isnan(), nan)
    torch.testing.assert_close(hy[~nan].double(), ref_h[~nan], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cy[~nan].double(), ref_c[~nan], atol=1e-6, rtol=1e-5)
    small = torch.ops.aten._thnn_fused_lstm_cell(
        torch.full((1, 32), 1e-6, device=DEV), torch.zeros(1, 32, device=DEV),
        torch.zeros(1, 8, device=DEV))[0].cpu()
    # hy = sigmoid(1e-6) * tanh(sigmoid(1e-6) * tanh(1e-6)): relative accuracy near 0.
    expect = _lstm_cell_reference(torch.full((1, 32), 1e-6), torch.zeros(1, 32), torch.zeros(1, 8))[0]
    torch.testing.assert_close(small.double(), expect, atol=0, rtol=1e-6)


PORTABLE_CELLS = """
import sys, torch, rustorch_device
sys.path.insert(0, {tests!r})
from test_rnn import _cell_outputs
torch.save(_cell_outputs(), {path!r})
"""


def _cell_outputs() -> list[torch.Tensor]:
    torch.manual_seed(0)
    ig, hg, cx = torch.randn(4, 4 * 20) * 4, torch.randn(4, 4 * 20), torch.randn(4, 20)
    gi, gh, hx = torch.randn(4, 3 * 20) * 4, torch.randn(4, 3 * 20), torch.randn(4, 20)
    d = [t.to(DEV) for t in (ig, hg, cx, gi, gh, hx)]
    hy, cy, ws = torch.ops.aten._thnn_fused_lstm_cell(d[0], d[1], d[2])
    grads = torch.ops.aten._thnn_fused_lstm_cell_backward_impl(hy * 0.5, cy * 0.25, d[2], cy, ws,
                                                               True)
    ghy, gws = torch.ops.aten._thnn_fused_gru_cell(d[3], d[4], d[5])
    ggru = torch.ops.aten._thnn_fused_gru_cell_backward(ghy * 0.5, gws, True)
    return [t.cpu() for t in (hy, cy, ws, *grads, ghy, gws, *ggru)]


def test_portable_cells_match_vectorized(tmp_path):
    """RUSTORCH_ISA=scalar takes the portable rows (forward and backward, LSTM and GRU); they
    must agree with the AVX2 rows this process uses."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=str(tests.parent), RUSTORCH_ISA="scalar")
    path = tmp_path / "scalar.pt"
    code = PORTABLE_CELLS.format(tests=str(tests), path=str(path))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    for a, b in zip(torch.load(path), _cell_outputs(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
