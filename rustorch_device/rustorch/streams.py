"""Streams and events of torch.rustorch (torch.cuda's names), backed by torch.Stream/torch.Event.

Kernels run synchronously on the calling thread, so every device has one stream, which is always
idle: synchronize/query/wait return at once, and events record the wall-clock time, which makes
Event(enable_timing=True).elapsed_time truthful.

`Stream(...)` and `Event(...)` return plain torch.Stream / torch.Event objects of the rustorch
device (torch's C++ methods accept only those), and `isinstance(x, torch.rustorch.Event)` is true
for any torch.Event of the device.
"""

from __future__ import annotations

import torch

from ._device_index import DeviceLike, device_index

_TYPE = "rustorch"


class _OnDevice(type):
    """isinstance(x, cls) holds for the torch base type's objects that live on rustorch."""

    _base: type

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._base) and obj.device.type == _TYPE  # type: ignore[attr-defined]


class Stream(metaclass=_OnDevice):
    """`torch.rustorch.Stream(device=None, priority=0)`: a torch.Stream of the device."""

    _base = torch.Stream

    def __new__(cls, device: DeviceLike = None, priority: int = 0) -> torch.Stream:  # type: ignore[misc]
        return torch.Stream(device=torch.device(_TYPE, device_index(device)), priority=priority)


class Event(metaclass=_OnDevice):
    """`torch.rustorch.Event(enable_timing=False, blocking=False, interprocess=False)`."""

    _base = torch.Event

    def __new__(cls, enable_timing: bool = False, blocking: bool = False,  # type: ignore[misc]
                interprocess: bool = False) -> torch.Event:
        return torch.Event(device=torch.device(_TYPE, device_index(None)),
                           enable_timing=enable_timing, blocking=blocking,
                           interprocess=interprocess)


def _check(s: torch.Stream) -> torch.Stream:
    if not isinstance(s, torch.Stream) or s.device.type != _TYPE:
        raise ValueError(f"expected a rustorch stream, got {s!r}")
    return s


def current_stream(device: DeviceLike = None) -> torch.Stream:
    """The stream work on `device` goes to (its only stream)."""
    return torch.accelerator.current_stream(torch.device(_TYPE, device_index(device)))


def default_stream(device: DeviceLike = None) -> torch.Stream:
    return current_stream(device)


def set_stream(stream: torch.Stream) -> None:
    torch.accelerator.set_stream(_check(stream))


class StreamContext:
    """Makes `stream` current inside the block (None: no-op); torch.cuda.StreamContext's name,
    used by stream-aware code such as FSDP2."""

    def __init__(self, stream: torch.Stream | None) -> None:
        self.stream = None if stream is None else _check(stream)
        self._prev: torch.Stream | None = None

    def __enter__(self) -> torch.Stream | None:
        if self.stream is not None:
            self._prev = current_stream(self.stream.device.index)
            torch.accelerator.set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self._prev is not None:
            torch.accelerator.set_stream(self._prev)


def stream(stream: torch.Stream | None) -> StreamContext:
    """Makes `stream` current inside the block (None: no-op), like torch.cuda.stream."""
    return StreamContext(stream)
