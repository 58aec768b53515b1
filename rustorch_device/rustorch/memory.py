"""Memory statistics of torch.rustorch, mirroring torch.cuda's names (via torch.accelerator)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from ._device_index import DeviceLike, device_index


def memory_stats(device: DeviceLike = None) -> OrderedDict[str, Any]:
    return torch.accelerator.memory_stats(device_index(device))


def memory_allocated(device: DeviceLike = None) -> int:
    return torch.accelerator.memory_allocated(device_index(device))


def max_memory_allocated(device: DeviceLike = None) -> int:
    return torch.accelerator.max_memory_allocated(device_index(device))


def memory_reserved(device: DeviceLike = None) -> int:
    return torch.accelerator.memory_reserved(device_index(device))


def max_memory_reserved(device: DeviceLike = None) -> int:
    return torch.accelerator.max_memory_reserved(device_index(device))


def reset_peak_memory_stats(device: DeviceLike = None) -> None:
    torch.accelerator.reset_peak_memory_stats(device_index(device))


def reset_accumulated_memory_stats(device: DeviceLike = None) -> None:
    torch.accelerator.reset_accumulated_memory_stats(device_index(device))


def empty_cache() -> None:
    """Returns every cached (free) block to the system."""
    torch.accelerator.empty_cache()


def mem_get_info(device: DeviceLike = None) -> tuple[int, int]:
    """(free, total) bytes; device memory is host memory, so these are the machine's."""
    return torch._C._accelerator_getMemoryInfo(device_index(device))
