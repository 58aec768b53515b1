"""torch.rustorch mirrors torch.cuda's stream and event names."""

from __future__ import annotations

import pytest
import torch


def test_stream_and_event_are_the_devices():
    s = torch.rustorch.Stream()
    assert isinstance(s, torch.Stream) and isinstance(s, torch.rustorch.Stream)
    assert s.device == torch.device("rustorch", 0)
    assert not isinstance(torch.Stream(device="cpu"), torch.rustorch.Stream)
    assert s == torch.rustorch.current_stream() == torch.rustorch.default_stream(0)
    assert s.query()
    s.synchronize()
    s.wait_stream(torch.rustorch.current_stream())
    e = s.record_event()
    assert isinstance(e, torch.rustorch.Event) and e.query()


def test_event_timing_is_truthful():
    start = torch.rustorch.Event(enable_timing=True)
    end = torch.rustorch.Event(enable_timing=True)
    start.record()
    a = torch.randn(256, 256, device="rustorch")
    for _ in range(5):
        a = a @ a.tanh()
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) > 0


def test_stream_context_and_set_stream():
    s = torch.rustorch.Stream()
    with torch.rustorch.stream(s):
        assert torch.rustorch.current_stream() == s
    with torch.rustorch.stream(None):
        pass
    torch.rustorch.set_stream(s)
    with pytest.raises(ValueError, match="rustorch stream"):
        torch.rustorch.set_stream(torch.Stream(device="cpu"))
