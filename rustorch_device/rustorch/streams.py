"""Streams and events of the rustorch device (torch.cuda's names), for device-agnostic code.

rustorch kernels run synchronously on the calling thread, so every stream is the same ordered
queue and every event is complete once recorded: waits return at once. FSDP2
(`fully_shard`) and other stream-aware code use these to overlap communication with compute;
on rustorch they keep program order, which is correct (no overlap, no race).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch

from ._device_index import DeviceLike, device_index


class Stream:
    """A stream on a rustorch device; work on it runs in program order, like all rustorch work."""

    def __init__(self, device: DeviceLike = None, priority: int = 0, **kwargs: Any) -> None:
        self.device = torch.device("rustorch", device_index(device))
        self.priority = priority

    def wait_event(self, event: Event) -> None:
        """Makes later work wait for `event`: already complete on a synchronous device."""

    def wait_stream(self, stream: Stream) -> None:
        """Makes later work wait for `stream`'s queued work: there is none pending."""

    def record_event(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        """Waits for the stream's work: it has all run."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and other.device == self.device

    def __hash__(self) -> int:
        return hash(("rustorch-stream", self.device))

    def __repr__(self) -> str:
        return f"<torch.rustorch.Stream device={self.device}>"


class Event:
    """An event: complete as soon as it is recorded (work before it has already run)."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False) -> None:
        self.enable_timing = enable_timing

    def record(self, stream: Stream | None = None) -> Event:
        return self

    def wait(self, stream: Stream | None = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass


_current: dict[int, Stream] = {}


def default_stream(device: DeviceLike = None) -> Stream:
    idx = device_index(device)
    return Stream(idx)


def current_stream(device: DeviceLike = None) -> Stream:
    idx = device_index(device)
    return _current.get(idx) or default_stream(idx)


def set_stream(stream: Stream) -> None:
    _current[stream.device.index or 0] = stream


class StreamContext(AbstractContextManager):
    """Selects `stream` for the block (torch.cuda.StreamContext's name)."""

    def __init__(self, stream: Stream | None) -> None:
        self.stream = stream
        self._prev: Stream | None = None

    def __enter__(self) -> Stream | None:
        if self.stream is not None:
            self._prev = current_stream(self.stream.device)
            set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self._prev is not None:
            set_stream(self._prev)


def stream(stream: Stream | None) -> StreamContext:
    return StreamContext(stream)
