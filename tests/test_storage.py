"""Storages and serialization: torch.save / torch.load of rustorch tensors and state_dicts."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import rustorch_device  # noqa: F401

DEV = "rustorch"


def roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **load_kwargs)


@pytest.mark.parametrize("weights_only", [True, False])
def test_tensor_roundtrip_stays_on_device(weights_only: bool):
    t = torch.randn(4, 5, device=DEV)
    back = roundtrip(t, weights_only=weights_only)
    assert back.device == torch.device("rustorch:0")
    assert torch.equal(back.cpu(), t.cpu())


@pytest.mark.parametrize("where", ["cpu", "rustorch", torch.device("rustorch:0")])
def test_map_location(where):
    t = torch.randn(3, device=DEV)
    back = roundtrip(t, weights_only=True, map_location=where)
    assert back.device.type == torch.device(where).type
    assert torch.equal(back.cpu(), t.cpu())


def test_cpu_checkpoint_loads_onto_device():
    t = torch.arange(6.0).view(2, 3)
    back = roundtrip(t, weights_only=True, map_location="rustorch")
    assert back.device.type == "rustorch"
    assert torch.equal(back.cpu(), t)


def test_views_keep_sharing_storage():
    base = torch.arange(10.0, device=DEV)
    view = base[2:6]
    a, b = roundtrip((base, view), weights_only=True)
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    b.fill_(-1)
    assert a[2:6].cpu().tolist() == [-1.0] * 4
    assert b.storage_offset() == 2


def test_state_dict_roundtrip():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).to(DEV)
    sd = roundtrip(model.state_dict(), weights_only=True)
    assert all(v.device.type == "rustorch" for v in sd.values())
    fresh = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).to(DEV)
    fresh.load_state_dict(sd)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k].cpu(), v.cpu()), k
    cpu_sd = roundtrip(model.state_dict(), weights_only=True, map_location="cpu")
    assert all(v.device.type == "cpu" for v in cpu_sd.values())


def test_all_dtypes_roundtrip():
    for dtype in [torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8,
                  torch.uint8, torch.bool, torch.complex64]:
        t = (torch.arange(6) % 2).to(dtype).to(DEV)
        back = roundtrip(t, weights_only=True)
        assert back.dtype == dtype and torch.equal(back.cpu(), t.cpu())


def test_untyped_storage():
    t = torch.arange(4, dtype=torch.int32, device=DEV)
    s = t.untyped_storage()
    assert s.device.type == "rustorch" and s.nbytes() == 16
    assert s.cpu().device.type == "cpu"
    cpu_storage = torch.UntypedStorage(8)
    assert cpu_storage.rustorch().device.type == "rustorch"
    assert torch.ones(1).untyped_storage().rustorch().device == torch.device("rustorch:0")


def test_storage_resize_keeps_prefix():
    t = torch.arange(4, dtype=torch.int32, device=DEV)
    s = t.untyped_storage()
    s.resize_(32)
    assert s.nbytes() == 32
    assert torch.tensor([], dtype=torch.int32, device=DEV).set_(s, 0, (4,), (1,)).cpu().tolist() == [0, 1, 2, 3]
