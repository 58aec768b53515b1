"""Shared by the OpInfo tests of rustorch kernels: run an OpInfo's samples on the device and
on CPU copies, and compare outputs and input gradients."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch.utils._pytree import tree_flatten, tree_map


def to_cpu(t: object) -> object:
    """A CPU copy of a tensor, as a leaf with the same requires_grad; other values unchanged."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().requires_grad_(t.requires_grad)
    return t


def fresh_leaf(t: object) -> object:
    """The same memory and strides as a leaf of its own (other values unchanged).

    Some OpInfo samples (e.g. the arbitrarily strided ones of elementwise unary ops) are views
    taken in no_grad mode of a base that requires grad: a leaf whose requires_grad does not
    connect it to the graph, so a gradient with respect to it is None, on CPU as on rustorch.
    Their CPU copies (to_cpu) are fresh leaves; comparing gradients needs the same on the device.
    """
    if isinstance(t, torch.Tensor):
        return t.detach().requires_grad_(t.requires_grad)
    return t


def samples(op, device: str, dtype: torch.dtype) -> Iterable:
    """sample_inputs and reference_inputs (the latter includes the former for most ops; both
    are generated with noncontiguous variants where the OpInfo defines them)."""
    return itertools.chain(
        op.sample_inputs(device, dtype, requires_grad=op.supports_autograd),
        op.reference_inputs(device, dtype, requires_grad=op.supports_autograd),
    )


def compare_with_cpu(case, op, sample, atol: float, rtol: float) -> None:
    """Output of `op` on the device sample equals CPU's; so do the input gradients (both taken
    with respect to fresh leaves, see fresh_leaf)."""
    args = tree_map(fresh_leaf, (sample.input, sample.args, sample.kwargs))
    cpu_args = tree_map(to_cpu, args)
    out = op(args[0], *args[1], **args[2])
    ref = op(cpu_args[0], *cpu_args[1], **cpu_args[2])
    case.assertEqual(out.device.type, "rustorch")
    case.assertEqual(out.cpu(), ref, atol=atol, rtol=rtol, exact_dtype=True)
    leaves = [t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    cpu_leaves = [
        t for t in tree_flatten(cpu_args)[0] if isinstance(t, torch.Tensor) and t.requires_grad
    ]
    if not leaves or not ref.requires_grad:
        return
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, leaves, grad.to(out.device), allow_unused=True)
    want = torch.autograd.grad(ref, cpu_leaves, grad, allow_unused=True)
    for g, w in zip(got, want, strict=True):
        case.assertEqual(g is None, w is None)
        if w is not None:
            case.assertEqual(g.cpu(), w, atol=atol, rtol=rtol)


def assert_ran_natively(case, names: Iterable[str]) -> None:
    """Every op in `names` ran on its native kernel since the last reset_op_stats, never on the
    fallback."""
    import rustorch_device

    stats = rustorch_device.op_stats()
    for name in names:
        case.assertGreater(stats.get(name, {"native": 0})["native"], 0, name)
        case.assertEqual(stats[name]["fallback"], 0, name)
