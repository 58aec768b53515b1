"""The counted, zero-copy CPU fallback: counts, policies, aliasing, out=, lists, convolution."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from device_helpers import run_python_status

import rustorch_device

DEV = "rustorch"

# Test-only ops whose only kernels are CPU Python kernels: on rustorch tensors they can only run
# through the fallback, which lets the tests see exactly what the CPU kernel receives.
_lib = torch.library.Library("rustorch_fallback_test", "DEF")
_lib.define("first_row(Tensor(a) x) -> Tensor(a)")
_lib.define("same(Tensor(a) x) -> Tensor(a)")
_lib.define("data_ptr(Tensor x) -> int")
_lib.define("fresh(Tensor x) -> Tensor")
_lib.define("cached(Tensor x) -> Tensor")
_lib.define("grow(Tensor(a!) out, int n) -> ()")
_lib.define("pair(Tensor x) -> (Tensor, Tensor)")

_seen: dict[str, object] = {}


def _fresh(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def _cached(x: torch.Tensor) -> torch.Tensor:
    out = x + 1
    _seen["cached"] = out  # the kernel keeps a reference: the fallback must not adopt it
    return out


def _grow(out: torch.Tensor, n: int) -> None:
    out.resize_(n)
    out.copy_(torch.arange(n, dtype=out.dtype))


def _pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    base = x * 10
    return base, base[1:]


_lib.impl("first_row", lambda x: x[0], "CPU")
_lib.impl("same", lambda x: x, "CPU")
_lib.impl("data_ptr", lambda x: x.data_ptr(), "CPU")
_lib.impl("fresh", _fresh, "CPU")
_lib.impl("cached", _cached, "CPU")
_lib.impl("grow", _grow, "CPU")
_lib.impl("pair", _pair, "CPU")
ops = torch.ops.rustorch_fallback_test


@pytest.fixture(autouse=True)
def _silent_policy():
    prev = rustorch_device.set_fallback_policy("silent")
    yield
    rustorch_device.set_fallback_policy(prev)


def counts(op: str) -> tuple[int, int]:
    s = rustorch_device.op_stats().get(op, {"native": 0, "fallback": 0})
    return s["native"], s["fallback"]


def test_fallback_calls_are_counted_per_op():
    rustorch_device.reset_op_stats()
    x = torch.ones(4, device=DEV)
    x.exp()
    x.exp()
    ops.fresh(x)
    stats = rustorch_device.op_stats()
    # exp runs natively or on the fallback (as exp or through exp.out), but every call is counted.
    exp_calls = sum(s["native"] + s["fallback"] for op, s in stats.items() if op.startswith("aten::exp"))
    assert exp_calls == 2
    assert stats["rustorch_fallback_test::fresh"] == {"native": 0, "fallback": 1}
    rustorch_device.reset_op_stats()
    assert rustorch_device.op_stats() == {}


def test_inputs_are_passed_without_copy():
    x = torch.arange(12.0, device=DEV).view(3, 4)[1:, 1:]
    assert ops.data_ptr(x) == x.data_ptr()


def _fallback_op() -> tuple[str, object]:
    """A non-structured aten op (its CPU kernel allocates the result) that currently runs on
    the fallback; native kernels may take some of the candidates over."""
    x = torch.rand(8, device=DEV)
    for name, fn in [
        ("aten::flip", lambda t: torch.flip(t, [0])),
        ("aten::roll", lambda t: torch.roll(t, 1)),
        ("aten::_cdist_forward", lambda t: torch.cdist(t.view(-1, 2), t.view(-1, 2))),
    ]:
        rustorch_device.reset_op_stats()
        fn(x)
        if rustorch_device.op_stats().get(name, {"fallback": 0})["fallback"]:
            return name, fn
    pytest.skip("no candidate op runs on the fallback any more")


def test_new_results_are_adopted_without_copy():
    _, fn = _fallback_op()
    x = torch.rand(100_000, device=DEV)
    torch.accelerator.empty_cache()
    reserved = torch.accelerator.memory_reserved()
    y = fn(x)
    assert y.device.type == "rustorch"
    assert torch.equal(y.cpu(), fn(x.cpu()))
    assert torch.accelerator.memory_allocated() >= reserved and torch.accelerator.memory_reserved() > reserved
    del y
    # An adopted result goes back to its CPU owner, so nothing stays cached on the device; a
    # device copy would have left its block in the cache.
    assert torch.accelerator.memory_reserved() == reserved


def test_results_the_kernel_keeps_are_copied():
    y = ops.cached(torch.zeros(3, device=DEV))
    _seen["cached"].fill_(100)
    assert y.cpu().tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("mode", ["adopt", "copy"])
def test_output_modes_agree(mode: str):
    try:
        rustorch_device._C._set_fallback_output_mode(mode)
        a, b = ops.pair(torch.arange(4.0, device=DEV))
        assert a.cpu().tolist() == [0.0, 10.0, 20.0, 30.0]
        # Results over one storage stay one storage on the device.
        assert b.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()
        b.fill_(-1)
        assert a.cpu().tolist() == [0.0, -1.0, -1.0, -1.0]
    finally:
        rustorch_device._C._set_fallback_output_mode("adopt")


def test_view_results_alias_the_input():
    base = torch.zeros(3, 4, device=DEV)
    row = ops.first_row(base)
    assert row.device.type == "rustorch" and row.shape == (4,)
    row.fill_(5)
    assert base.cpu()[0].tolist() == [5.0] * 4
    assert ops.same(base) is base


def test_inplace_and_out_results_are_the_arguments():
    x = torch.ones(5, device=DEV)
    ptr = x.data_ptr()
    assert x.exp_() is x and x.data_ptr() == ptr
    out = torch.empty(5, device=DEV)
    optr = out.data_ptr()
    r = torch.exp(torch.zeros(5, device=DEV), out=out)
    assert r is out and out.data_ptr() == optr
    assert out.cpu().tolist() == [1.0] * 5


def test_out_argument_is_resized():
    out = torch.empty(0, device=DEV)
    torch.exp(torch.zeros(2, 3, device=DEV), out=out)
    assert out.shape == (2, 3) and out.device.type == "rustorch"
    assert out.cpu().eq(1).all()
    base = torch.arange(3.0, device=DEV)
    view = base[:1]
    ops.grow(view, 6)  # resized past its storage: the rustorch storage adopts the new memory
    assert view.cpu().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()


def test_inplace_on_strided_views_writes_through():
    base = torch.zeros(4, 6, device=DEV)
    view = base[1:3, ::2]
    view.exp_()
    expected = torch.zeros(4, 6)
    expected[1:3, ::2] = 1
    assert torch.equal(base.cpu(), expected)


def test_cpu_scalar_tensors_mix_in():
    x = torch.arange(3.0, device=DEV)
    assert torch.equal(torch.pow(x, torch.tensor(2.0)).cpu(), torch.tensor([0.0, 1.0, 4.0]))
    assert torch.equal(torch.atan2(x, torch.tensor(1.0)).cpu(), torch.atan2(x.cpu(), torch.tensor(1.0)))


def test_tensor_lists_in_and_out():
    xs = [torch.ones(2, device=DEV), torch.full((3,), 2.0, device=DEV)]
    ys = torch._foreach_exp(xs)
    assert [y.device.type for y in ys] == ["rustorch", "rustorch"]
    assert torch.allclose(ys[1].cpu(), torch.full((3,), 2.0).exp())
    ptrs = [x.data_ptr() for x in xs]
    torch._foreach_mul_(xs, 3.0)
    assert [x.data_ptr() for x in xs] == ptrs
    assert xs[1].cpu().tolist() == [6.0] * 3
    assert torch.cat([xs[0], xs[1]]).cpu().tolist() == [3.0, 3.0, 6.0, 6.0, 6.0]


def test_multiple_results_and_indexing():
    x = torch.tensor([3.0, 1.0, 2.0], device=DEV)
    values, indices = x.sort()
    assert values.cpu().tolist() == [1.0, 2.0, 3.0] and indices.cpu().tolist() == [1, 2, 0]
    assert x[torch.tensor([0, 2], device=DEV)].cpu().tolist() == [3.0, 2.0]
    assert x[x > 1.5].cpu().tolist() == [3.0, 2.0]
    assert torch.nonzero(x > 1.5).cpu().flatten().tolist() == [0, 2]


def test_convolution_runs_on_device_with_cpu_results():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9)
    w = torch.randn(4, 3, 3, 3)
    b = torch.randn(4)
    xd, wd, bd = (t.to(DEV).requires_grad_() for t in (x, w, b))
    xc, wc, bc = (t.clone().requires_grad_() for t in (x, w, b))
    rustorch_device.reset_op_stats()
    yd = F.conv2d(xd, wd, bd, stride=2, padding=1)
    yc = F.conv2d(xc, wc, bc, stride=2, padding=1)
    assert torch.allclose(yd.cpu(), yc, atol=1e-5)
    yd.square().sum().backward()
    yc.square().sum().backward()
    for d, c in [(xd, xc), (wd, wc), (bd, bc)]:
        assert torch.allclose(d.grad.cpu(), c.grad, atol=1e-4)
    # The native kernels (ops branch) take convolution before the *_overrideable route.
    stats = rustorch_device.op_stats()
    assert stats["aten::convolution"] == {"native": 1, "fallback": 0}
    assert stats["aten::convolution_backward"] == {"native": 1, "fallback": 0}
    assert "aten::convolution_overrideable" not in stats
    # Transposed and grouped convolutions too.
    wt = torch.randn(4, 2, 3, 3)
    yt = F.conv_transpose2d(yc.detach().to(DEV), wt.to(DEV), groups=2)
    assert torch.allclose(yt.cpu(), F.conv_transpose2d(yc.detach(), wt, groups=2), atol=1e-4)


def test_warn_policy_warns_once_per_op():
    name, fn = _fallback_op()
    x = torch.rand(4, device=DEV)
    rustorch_device.set_fallback_policy("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(x)
        fn(x)
    messages = [str(w.message) for w in caught if "no native rustorch kernel" in str(w.message)]
    assert len(messages) == 1
    assert name.split(".")[0] in messages[0] and "RUSTORCH_FALLBACK=warn" in messages[0]


def test_error_policy_raises_with_op_name():
    x = torch.empty(2, device=DEV)
    rustorch_device.set_fallback_policy("error")
    with pytest.raises(NotImplementedError, match="rustorch_fallback_test::fresh"):
        ops.fresh(x)
    with pytest.raises(ValueError):
        rustorch_device.set_fallback_policy("loud")  # type: ignore[arg-type]


def test_error_policy_from_environment():
    proc = run_python_status(
        """
        import torch
        x = torch.arange(3.0).to("rustorch")  # device plumbing is not the fallback
        assert x.cpu().tolist() == [0.0, 1.0, 2.0]
        x.exp()
        """,
        env={"RUSTORCH_FALLBACK": "error"},
    )
    assert proc.returncode != 0 and "RUSTORCH_FALLBACK=error" in proc.stderr
    proc = run_python_status("import torch", env={"RUSTORCH_FALLBACK": "sometimes"})
    assert proc.returncode != 0 and "RUSTORCH_FALLBACK must be one of" in proc.stderr


def test_unsupported_inputs_of_a_native_op_count_as_fallback():
    # mm is registered native; int64 operands are outside the kernel, so the registration sends
    # the call to the fallback and counts it there (never as native).
    a = torch.randint(-5, 5, (3, 4), device=DEV)
    b = torch.randint(-5, 5, (4, 2), device=DEV)
    before = counts("aten::mm")
    out = a @ b
    assert torch.equal(out.cpu(), a.cpu() @ b.cpu())
    after = counts("aten::mm")
    assert after[1] == before[1] + 1 and after[0] == before[0]
    fa, fb = a.float(), b.float()
    torch.testing.assert_close((fa @ fb).cpu(), fa.cpu() @ fb.cpu())
    assert counts("aten::mm") == (after[0] + 1, after[1])


def test_cpu_tensors_next_to_rustorch_tensors_are_refused():
    dev = torch.rand(4, 2, device=DEV)
    with pytest.raises(RuntimeError, match="same device"):
        torch.cdist(dev, torch.rand(3, 2))
    # Indexing accepts CPU indices, as on CUDA.
    assert dev[torch.tensor([0, 3])].device.type == "rustorch"
