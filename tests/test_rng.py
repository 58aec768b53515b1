"""Device generators: seeding, state, reproducibility of random ops on rustorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rustorch_device  # noqa: F401

DEV = "rustorch"


def test_manual_seed_makes_device_randomness_reproducible():
    torch.manual_seed(123)
    a = torch.randn(100, device=DEV)
    b = torch.rand(7, device=DEV)
    torch.manual_seed(123)
    assert torch.equal(torch.randn(100, device=DEV).cpu(), a.cpu())
    assert torch.equal(torch.rand(7, device=DEV).cpu(), b.cpu())


def test_device_stream_matches_cpu_stream():
    # Same engine as the CPU generator: a seed gives the same numbers on both.
    torch.manual_seed(7)
    dev = torch.randn(50, device=DEV).cpu()
    torch.manual_seed(7)
    assert torch.equal(dev, torch.randn(50))


def test_device_generator_is_separate_from_cpu():
    torch.manual_seed(0)
    torch.randn(10)  # consumes the CPU generator only
    dev = torch.randn(5, device=DEV).cpu()
    torch.manual_seed(0)
    assert torch.equal(dev, torch.randn(5, device=DEV).cpu())


def test_get_set_rng_state():
    torch.rustorch.manual_seed(5)
    state = torch.rustorch.get_rng_state()
    assert state.dtype == torch.uint8 and state.device.type == "cpu"
    a = torch.randn(20, device=DEV)
    torch.rand(3, device=DEV)
    torch.rustorch.set_rng_state(state)
    assert torch.equal(torch.randn(20, device=DEV).cpu(), a.cpu())
    states = torch.rustorch.get_rng_state_all()
    assert len(states) == torch.rustorch.device_count()
    with pytest.raises(TypeError):
        torch.rustorch.set_rng_state(torch.zeros(3))


def test_seed_functions():
    torch.rustorch.manual_seed_all(11)
    assert torch.rustorch.initial_seed() == 11
    torch.rustorch.seed()
    torch.rustorch.seed_all()
    assert torch.rustorch.default_generator().device == torch.device("rustorch:0")


def test_dropout_reproducible_and_correct():
    x = torch.ones(1000, device=DEV)
    torch.manual_seed(3)
    a = F.dropout(x, 0.3, training=True)
    torch.manual_seed(3)
    b = F.dropout(x, 0.3, training=True)
    assert torch.equal(a.cpu(), b.cpu())
    kept = a.cpu()[a.cpu() != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.7))
    assert 550 < kept.numel() < 850


def test_explicit_generators():
    g = torch.Generator(device=DEV)
    assert g.device == torch.device("rustorch:0")
    g.manual_seed(99)
    a = torch.randn(10, device=DEV, generator=g)
    g.manual_seed(99)
    b = torch.randn(10, device=DEV, generator=g)
    assert torch.equal(a.cpu(), b.cpu())
    state = g.get_state()
    c = torch.rand(4, device=DEV, generator=g)
    g.set_state(state)
    assert torch.equal(torch.rand(4, device=DEV, generator=g).cpu(), c.cpu())
    # Drawing from an explicit generator leaves the default one alone.
    torch.manual_seed(1)
    ref = torch.randn(3, device=DEV).cpu()
    torch.manual_seed(1)
    torch.randn(3, device=DEV, generator=g)
    assert torch.equal(torch.randn(3, device=DEV).cpu(), ref)


def test_random_ops_on_device():
    torch.manual_seed(0)
    assert torch.randint(0, 5, (100,), device=DEV).cpu().max() < 5
    assert sorted(torch.randperm(6, device=DEV).cpu().tolist()) == list(range(6))
    assert torch.bernoulli(torch.full((10,), 1.0, device=DEV)).cpu().eq(1).all()
    assert torch.multinomial(torch.tensor([0.0, 1.0], device=DEV), 3, True).cpu().eq(1).all()
    t = torch.empty(1000, device=DEV).uniform_(2, 3)
    assert 2 <= t.min().item() and t.max().item() <= 3
    t.normal_(5, 0.01)
    assert abs(t.mean().item() - 5) < 0.01
    t.exponential_()
    assert t.min().item() >= 0
