"""Gradients with respect to leaves that are views: rustorch must give CPU's answer, the same
gradient or the same None, for every way of building such a leaf.

A view taken in no_grad mode of a tensor that requires grad is a leaf whose requires_grad is
inherited but which is not connected to the graph (PyTorch's CreationMeta.NO_GRAD_MODE): a
gradient with respect to it is None on CPU too. The other constructions (a view of a detached
tensor, a detached view) are real leaves and get a gradient. The view ops run through our
registrations (aten/minimal.cpp: view, as_strided, unfold, ...; composite ones on top), so a
registration that lost the view relation would show up here as a difference from CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

DEV = "rustorch"

VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "slice_step2": lambda t: t[:, ::2],
    "transpose": lambda t: t.t(),
    "unfold": lambda t: t.unfold(0, 2, 1),
    "as_strided": lambda t: t.as_strided((3, 2), (1, 3), 1),
    "diagonal": lambda t: t.diagonal(),
    "expand": lambda t: t[:1].expand(3, 6),
    "view": lambda t: t.view(-1),
    "narrow": lambda t: t.narrow(1, 1, 3),
    "select": lambda t: t.select(0, 1),
    "permute_slice": lambda t: t.permute(1, 0)[::2],
    "unflatten": lambda t: t.unflatten(1, (2, 3)),
}

BUILDS = ("nograd_view_of_nonleaf", "nograd_view_of_leaf", "view_of_detached_nonleaf",
          "detached_view_of_nonleaf")


def _leaf(device: str, build: str, view: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    leaf = torch.randn(4, 6, generator=gen).to(device).requires_grad_()
    nonleaf = leaf * 2
    if build == "nograd_view_of_nonleaf":
        with torch.no_grad():
            return view(nonleaf)
    if build == "nograd_view_of_leaf":
        with torch.no_grad():
            return view(leaf)
    if build == "view_of_detached_nonleaf":
        return view(nonleaf.detach()).requires_grad_()
    return view(nonleaf).detach().requires_grad_()


def _grad(device: str, build: str, view: Callable[[torch.Tensor], torch.Tensor]):
    v = _leaf(device, build, view)
    assert v.device.type == device
    y = (v.sin() * 3).sum()
    return v.is_leaf, v.requires_grad, torch.autograd.grad(y, v, allow_unused=True)[0]


@pytest.mark.parametrize("build", BUILDS)
def test_gradient_wrt_view_leaf_matches_cpu(build: str):
    for name, view in VIEWS.items():
        want = _grad("cpu", build, view)
        got = _grad(DEV, build, view)
        assert got[:2] == want[:2], (name, got[:2], want[:2])
        assert (got[2] is None) == (want[2] is None), name
        if want[2] is not None:
            torch.testing.assert_close(got[2].cpu(), want[2], msg=name)
    # The constructions that are real leaves do get a gradient (the test is not vacuous).
    if not build.startswith("nograd"):
        assert _grad(DEV, build, VIEWS["slice_step2"])[2] is not None
