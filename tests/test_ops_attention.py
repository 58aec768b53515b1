"""Scaled dot-product attention on rustorch: ATen's math path (`_scaled_dot_product_attention_math`)
composed of native ops only — bmm, softmax, dropout, and the mask pieces (`where.self` for bool
masks, `tril.out` for the causal mask, isneginf / all / where of `_safe_softmax`).

OpInfo samples of nn.functional.scaled_dot_product_attention (float32/float64; causal, GQA,
broadcast batch, float mask) must match CPU in outputs and input gradients; samples with
dropout are checked for shape and finiteness (their masks differ from CPU's by design, see
docs/architecture.md), and a construction that exposes the dropout mask checks its
distribution. Every case must run with 0 fallback calls, in training and under no_grad.
"""

import rustorch_device  # noqa: I001  (registers the device before torch.testing._internal)
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.testing._internal.common_device_type import instantiate_device_type_tests, ops
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_utils import TestCase

from opinfo_helpers import compare_with_cpu, samples

DEV = "rustorch"
SDPA_OPS = [op for op in op_db if op.name == "nn.functional.scaled_dot_product_attention"]
TOL = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-7, 1e-7)}


def fallback_calls() -> dict[str, int]:
    return {op: s["fallback"] for op, s in rustorch_device.op_stats().items() if s["fallback"]}


def qkv(b, h, lq, s, e, dtype=torch.float32, grad=False, ev=None):
    torch.manual_seed(0)
    shapes = ((b, h, lq, e), (b, h, s, e), (b, h, s, ev or e))
    cpu = [torch.randn(sh, dtype=dtype) for sh in shapes]
    dev = [t.to(DEV).requires_grad_(grad) for t in cpu]
    return [t.requires_grad_(grad) for t in cpu], dev


class TestSdpaOpInfo(TestCase):
    @ops(SDPA_OPS, dtypes=(torch.float32, torch.float64))
    def test_matches_cpu(self, device, dtype, op):
        atol, rtol = TOL[dtype]
        cases = list(samples(op, device, dtype))
        self.assertTrue(any(s.kwargs.get("dropout_p", 0) > 0 for s in cases))
        rustorch_device.reset_op_stats()
        for sample in cases:
            if sample.kwargs.get("dropout_p", 0.0) == 0.0:
                compare_with_cpu(self, op, sample, atol, rtol)
                continue
            out = op(sample.input, *sample.args, **sample.kwargs)
            ref = op(sample.input.detach().cpu(), *[a.detach().cpu() for a in sample.args],
                     **sample.kwargs)
            self.assertEqual(out.shape, ref.shape)
            self.assertTrue(torch.isfinite(out.cpu()).all())
            out.sum().backward()
        self.assertEqual(fallback_calls(), {})
        stats = rustorch_device.op_stats()
        for name in ("aten::bmm", "aten::_softmax", "aten::native_dropout", "aten::tril.out"):
            self.assertGreater(stats.get(name, {"native": 0})["native"], 0, name)


class TestSdpaCases(TestCase):
    def check(self, b, h, lq, s, e, mask=None, causal=False, scale=None, grad=True, ev=None,
              dtype=torch.float32, mask_grad=False):
        cpu, dev = qkv(b, h, lq, s, e, dtype, grad, ev)
        m_cpu = m_dev = None
        if mask is not None:
            m_cpu = mask
            m_dev = mask.to(DEV).requires_grad_(mask_grad)
            m_cpu = m_cpu.clone().requires_grad_(mask_grad)
        rustorch_device.reset_op_stats()
        out = F.scaled_dot_product_attention(*dev, attn_mask=m_dev, is_causal=causal, scale=scale)
        if grad:
            g = torch.randn(out.shape, dtype=dtype)
            out.backward(g.to(DEV))
        self.assertEqual(fallback_calls(), {})
        ref = F.scaled_dot_product_attention(*cpu, attn_mask=m_cpu, is_causal=causal, scale=scale)
        atol, rtol = TOL[dtype]
        self.assertEqual(out.cpu(), ref, atol=atol, rtol=rtol)
        if grad:
            ref.backward(g)
            for d, c in zip(dev, cpu, strict=True):
                self.assertEqual(d.grad.cpu(), c.grad, atol=atol, rtol=rtol)
            if mask_grad:
                self.assertEqual(m_dev.grad.cpu(), m_cpu.grad, atol=atol, rtol=rtol)

    def test_no_mask_transformer_shape(self):
        self.check(2, 4, 128, 128, 64)

    def test_odd_shapes(self):
        self.check(3, 1, 5, 7, 3)
        self.check(1, 2, 1, 9, 5, ev=4)

    def test_bool_mask(self):
        torch.manual_seed(1)
        keep = torch.rand(6, 11) > 0.4
        keep[:, 0] = True
        self.check(2, 3, 6, 11, 8, mask=keep)
        # A fully masked row gives zeros (_safe_softmax), as on CPU's math path.
        keep[2] = False
        self.check(2, 3, 6, 11, 8, mask=keep, dtype=torch.float64)
        self.check(2, 3, 6, 11, 8, mask=torch.rand(2, 1, 6, 11) > 0.3, grad=False)

    def test_float_mask_with_grad(self):
        self.check(2, 3, 6, 11, 8, mask=torch.randn(6, 11), mask_grad=True)
        self.check(2, 3, 6, 11, 8, mask=torch.randn(2, 3, 6, 11), mask_grad=True)

    def test_causal_and_scale(self):
        self.check(2, 4, 17, 17, 16, causal=True)
        self.check(1, 2, 5, 9, 4, causal=True, scale=0.3, dtype=torch.float64)

    def test_grouped_query_attention(self):
        torch.manual_seed(0)
        cpu = [torch.randn(s, requires_grad=True) for s in ((2, 8, 5, 4), (2, 2, 7, 4), (2, 2, 7, 4))]
        dev = [t.detach().to(DEV).requires_grad_() for t in cpu]
        rustorch_device.reset_op_stats()
        out = F.scaled_dot_product_attention(*dev, enable_gqa=True, is_causal=True)
        out.sum().backward()
        self.assertEqual(fallback_calls(), {})
        ref = F.scaled_dot_product_attention(*cpu, enable_gqa=True, is_causal=True)
        ref.sum().backward()
        self.assertEqual(out.cpu(), ref, atol=1e-4, rtol=1e-4)
        for d, c in zip(dev, cpu, strict=True):
            self.assertEqual(d.grad.cpu(), c.grad, atol=1e-4, rtol=1e-4)

    def test_eval_no_grad(self):
        with torch.no_grad():
            self.check(2, 4, 33, 33, 16, causal=True, grad=False)
            self.check(2, 4, 33, 20, 16, mask=torch.rand(33, 20) > 0.5, grad=False)

    def dropout_probe(self, p: float, threads: int) -> torch.Tensor:
        # q = k = 0 gives uniform weights 1/S; v = I makes the output the dropped weights
        # themselves: each element is 0 (dropped) or 1 / (S (1 - p)) (kept, rescaled).
        s = 64
        q = torch.zeros(4, 8, s, 16, device=DEV, requires_grad=True)
        k = torch.zeros(4, 8, s, 16, device=DEV)
        v = torch.eye(s).expand(4, 8, s, s).contiguous().to(DEV)
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.manual_seed(123)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            out.sum().backward()
        finally:
            torch.set_num_threads(prev)
        return out.detach().cpu()

    def test_dropout_distribution_and_determinism(self):
        p, s = 0.3, 64
        rustorch_device.reset_op_stats()
        out = self.dropout_probe(p, threads=2)
        self.assertEqual(fallback_calls(), {})
        kept = out != 0
        self.assertEqual(out[kept], torch.full_like(out[kept], 1 / (s * (1 - p))))
        frac = 1 - kept.double().mean().item()  # 131072 draws: std of the fraction ~0.0013
        self.assertLess(abs(frac - p), 0.01)
        self.assertEqual(out, self.dropout_probe(p, threads=1), atol=0, rtol=0)

    def test_transformer_layer_train_step_native(self):
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True).to(DEV)
        opt = torch.optim.AdamW(layer.parameters(), lr=1e-3, foreach=True)
        x = torch.randn(3, 10, 32, device=DEV)
        causal = nn.Transformer.generate_square_subsequent_mask(10, device=DEV)
        for mask in (None, causal):
            rustorch_device.reset_op_stats()
            opt.zero_grad()
            layer(x, src_mask=mask, is_causal=mask is not None).square().mean().backward()
            opt.step()
            self.assertEqual(fallback_calls(), {})


class TestMaskOps(TestCase):
    def test_tril_triu(self):
        rustorch_device.reset_op_stats()
        for dtype in (torch.bool, torch.float32, torch.int64):
            x = (torch.randn(2, 5, 7) * 5).to(dtype)
            xd = x.to(DEV)
            for diag in (-6, -1, 0, 2, 9):
                self.assertEqual(xd.tril(diag).cpu(), x.tril(diag))
                self.assertEqual(xd.triu(diag).cpu(), x.triu(diag))
            # Non-contiguous input, in place, out=.
            self.assertEqual(xd.mT.tril(1).cpu(), x.mT.tril(1))
            y = xd.clone()
            y.triu_(-1)
            self.assertEqual(y.cpu(), x.triu(-1))
            out = torch.empty(0, dtype=dtype, device=DEV)
            torch.tril(xd, 0, out=out)
            self.assertEqual(out.cpu(), x.tril())
        self.assertEqual(fallback_calls(), {})

    def test_where_with_cpu_scalars(self):
        cond = torch.rand(4, 6) > 0.5
        a, b = torch.randn(4, 6), torch.randn(1, 6, dtype=torch.float64)
        cd = cond.to(DEV)
        rustorch_device.reset_op_stats()
        got = [
            torch.where(cd, a.to(DEV), a.flip(0).to(DEV)),
            torch.where(cd, 0.0, a.to(DEV)),
            torch.where(cd, a.to(DEV), torch.tensor(float("-inf"))),
            torch.where(cd, b.to(DEV), 2.5),
        ]
        self.assertEqual(fallback_calls(), {})
        want = [
            torch.where(cond, a, a.flip(0)),
            torch.where(cond, 0.0, a),
            torch.where(cond, a, torch.tensor(float("-inf"))),
            torch.where(cond, b, 2.5),
        ]
        for g, w in zip(got, want, strict=True):
            self.assertEqual(g.device.type, DEV)
            self.assertEqual(g.cpu(), w, atol=0, rtol=0, exact_dtype=True)


instantiate_device_type_tests(TestSdpaOpInfo, globals(), only_for="rustorch")
