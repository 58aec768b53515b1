"""Normalizes the ways a rustorch device can be named (int, "rustorch:1", torch.device)."""

from __future__ import annotations

import torch

DeviceLike = int | str | torch.device | None


def device_index(device: DeviceLike, *, optional: bool = True) -> int:
    """Index of `device`; None (or a device without index) means the current device."""
    from .. import _C

    if device is None:
        if not optional:
            raise ValueError("a rustorch device is required")
        return _C._current_device()
    if isinstance(device, str):
        device = torch.device(device)
    if isinstance(device, torch.device):
        if device.type != "rustorch":
            raise ValueError(f"expected a rustorch device, got {device}")
        return _C._current_device() if device.index is None else device.index
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    raise TypeError(f"expected an int, str or torch.device naming a rustorch device, got {device!r}")
