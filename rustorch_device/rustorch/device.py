"""Device management of torch.rustorch, mirroring torch.cuda's names."""

from __future__ import annotations

from typing import Any

from .. import _C
from ._device_index import DeviceLike, device_index


def is_available() -> bool:
    return _C._device_count() > 0


def is_initialized() -> bool:
    return True


def init() -> None:
    """Nothing to initialize: the runtime is ready once the extension is loaded."""


def device_count() -> int:
    return _C._device_count()


def current_device() -> int:
    return _C._current_device()


def set_device(device: DeviceLike) -> None:
    """Sets the calling thread's current device (errors name the available device count)."""
    idx = device_index(device)
    if idx >= 0:
        _C._set_device(idx)


def synchronize(device: DeviceLike = None) -> None:
    """Waits for all work on `device`: kernels run synchronously, so only validates the index."""
    idx = device_index(device)
    if not 0 <= idx < device_count():
        _C._set_device(idx)  # raises the out-of-range error


def _is_in_bad_fork() -> bool:
    # Device memory is host memory and holds no driver state, so a forked child is fine.
    return False


def get_device_name(device: DeviceLike = None) -> str:
    device_index(device)
    return "rustorch (host memory)"


def get_device_properties(device: DeviceLike = None) -> dict[str, Any]:
    idx = device_index(device)
    free, total = _memory_info(idx)
    return {"name": get_device_name(idx), "index": idx, "total_memory": total}


def _memory_info(idx: int) -> tuple[int, int]:
    import torch

    return torch._C._accelerator_getMemoryInfo(idx)


class device:  # noqa: N801  (torch.cuda.device's name)
    """Context manager that makes `idx` the current rustorch device."""

    def __init__(self, idx: DeviceLike) -> None:
        self.idx = -1 if idx is None else device_index(idx)
        self.prev_idx = -1

    def __enter__(self) -> None:
        if self.idx >= 0:
            self.prev_idx = _C._exchange_device(self.idx)

    def __exit__(self, *exc: object) -> bool:
        if self.idx >= 0:
            _C._set_device(self.prev_idx)
        return False


class device_of(device):  # noqa: N801
    """Context manager that makes the device of tensor `obj` current (CPU tensors: no-op)."""

    def __init__(self, obj: Any) -> None:
        super().__init__(obj.get_device() if obj.device.type == "rustorch" else None)
