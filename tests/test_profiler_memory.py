"""torch.profiler(profile_memory=True) sees rustorch allocations (the allocator reports them)."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile


def test_profile_memory_reports_device_allocations_and_frees():
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        a = torch.ones(256, 1024, device="rustorch")  # 1 MiB
        b = a * 2
        del a, b
    events = prof.key_averages()
    allocated = sum(e.self_device_memory_usage for e in events if e.self_device_memory_usage > 0)
    net = sum(e.self_device_memory_usage for e in events)
    assert allocated == 2 * 2**20
    assert net == 0  # both tensors were freed inside the profiled region
