"""The caching device allocator, its statistics, and pinned host memory."""

from __future__ import annotations

import pytest
import testing_ext
import torch
from torch.utils.data import DataLoader, Dataset

import rustorch_device  # noqa: F401

DEV = "rustorch"


def stat(name: str) -> int:
    return torch.rustorch.memory_stats()[name]


def test_size_classes():
    testing_ext.load()
    round_size = torch.ops.rustorch_kernels.round_size
    assert round_size(1) == 64
    assert round_size(64) == 64
    assert round_size(65) == 128
    assert round_size(1024) == 1024
    assert round_size(1025) == 1280  # four classes per power of two above 1 KiB
    assert round_size(3000) == 3072
    for n in [1, 100, 5000, 123457, 10**7]:
        r = round_size(n)
        assert r >= n and r % 64 == 0 and r <= n * 1.25 + 64


def test_alignment_is_64_bytes():
    for n in [1, 3, 17, 1000, 4099, 100_003]:
        t = torch.empty(n, dtype=torch.uint8, device=DEV)
        assert t.data_ptr() % 64 == 0


def test_allocated_tracks_live_tensors():
    base = torch.accelerator.memory_allocated()
    t = torch.empty(1000, dtype=torch.float32, device=DEV)  # 4000 B -> class 4096
    assert torch.accelerator.memory_allocated() - base == 4096
    assert torch.rustorch.memory_allocated() == torch.accelerator.memory_allocated()
    del t
    assert torch.accelerator.memory_allocated() == base


def test_cache_reuses_blocks_and_empty_cache_releases_them():
    torch.accelerator.empty_cache()
    reserved0 = torch.accelerator.memory_reserved()
    allocs0 = stat("num_device_alloc")
    t = torch.empty(50_000, device=DEV)
    ptr = t.data_ptr()
    reserved1 = torch.accelerator.memory_reserved()
    assert reserved1 > reserved0
    del t
    assert torch.accelerator.memory_reserved() == reserved1  # cached, not returned
    t = torch.empty(50_000, device=DEV)
    assert t.data_ptr() == ptr  # same block handed out again
    assert stat("num_device_alloc") == allocs0 + 1
    del t
    torch.accelerator.empty_cache()
    assert torch.accelerator.memory_reserved() == reserved0


def test_thousand_cycles_return_to_baseline():
    base = torch.accelerator.memory_allocated()
    allocs0 = stat("allocation.all.allocated")
    for i in range(1000):
        t = torch.empty(1 + (i * 37) % 5000, device=DEV)
        t.fill_(1.0)
        del t
    assert torch.accelerator.memory_allocated() == base
    assert stat("allocation.all.allocated") >= allocs0 + 1000


def test_peak_and_reset():
    torch.accelerator.reset_peak_memory_stats()
    base = torch.accelerator.memory_allocated()
    t = torch.empty(1 << 20, dtype=torch.uint8, device=DEV)
    peak = torch.accelerator.max_memory_allocated()
    assert peak >= base + (1 << 20)
    del t
    assert torch.accelerator.max_memory_allocated() == peak
    torch.rustorch.reset_peak_memory_stats()
    assert torch.rustorch.max_memory_allocated() == torch.accelerator.memory_allocated() == base


def test_memory_stats_keys():
    stats = torch.rustorch.memory_stats()
    for key in [
        "allocated_bytes.all.current", "allocated_bytes.all.peak", "reserved_bytes.all.current",
        "allocation.all.current", "segment.all.current", "num_device_alloc", "num_device_free",
        "requested_bytes.all.current",
    ]:
        assert key in stats, key
    assert torch.rustorch.memory_reserved() >= torch.rustorch.memory_allocated()


def test_fallback_results_are_counted():
    base = torch.accelerator.memory_allocated()
    a = torch.ones(10_000, device=DEV)
    b = a.exp()  # a new result of the fallback, adopted from the CPU kernel
    assert torch.accelerator.memory_allocated() >= base + 2 * 40_000
    del a, b
    assert torch.accelerator.memory_allocated() == base


def test_empty_tensors_allocate_nothing():
    base = torch.accelerator.memory_allocated()
    t = torch.empty(0, 5, device=DEV)
    assert torch.accelerator.memory_allocated() == base
    assert t.shape == (0, 5)


def test_memory_info():
    free, total = torch.rustorch.mem_get_info()
    assert 0 < free <= total


def test_pin_memory_is_truthful():
    t = torch.randn(100)
    assert not t.is_pinned()
    p = t.pin_memory()
    assert p.is_pinned() and p[10:].is_pinned()
    assert torch.equal(p, t)
    assert not torch.randn(3).is_pinned()
    moved = p.to(DEV, non_blocking=True)
    assert torch.equal(moved.cpu(), t)
    assert torch.empty(5, pin_memory=True).is_pinned()


class _Squares(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((3,), float(i)), i * i


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_pin_memory(workers: int):
    loader = DataLoader(_Squares(), batch_size=4, pin_memory=True, num_workers=workers)
    seen = 0
    for x, y in loader:
        assert x.is_pinned() and y.is_pinned()
        xd = x.to(DEV, non_blocking=True)
        assert torch.equal(xd[:, 0].cpu().long() ** 2, y)
        seen += len(y)
    assert seen == 16
