"""Backward of a rustorch graph runs on the thread that calls backward(), as for CPU tensors.

PyTorch's autograd engine gives every non-CPU device type a worker thread per device and runs the
backward of that device's ops there, while the calling thread waits. For rustorch (synchronous,
host memory) that thread buys nothing and costs twice: two thread hand-offs per backward() call
(~35 us, a fifth of a 64x10 cross-entropy forward+backward), and a second OpenMP team, whose
threads compete with the calling thread's team for the same cores (an LSTM train step on 2
threads: 505 ms with the device thread, 345 ms without, preliminary).

The engine keeps the whole backward on the calling thread when multithreading is disabled for
that thread (the mode AOTAutograd and compiled autograd use). Setting that flag at import would
change what `torch.autograd.is_multithreading_enabled()` answers for every program, CPU-only and
CUDA ones included, so it is set only for the duration of a backward whose roots include a
rustorch tensor: the engine that `torch.autograd.backward` / `grad` / `Tensor.backward` call
(`Variable._execution_engine`) is wrapped, and every other call and attribute goes to the
original untouched. RUSTORCH_AUTOGRAD_DEVICE_THREAD=1 keeps PyTorch's device threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.variable import Variable

DEVICE_TYPE = "rustorch"


def _has_rustorch_root(roots: Sequence[Any]) -> bool:
    return any(isinstance(t, torch.Tensor) and t.device.type == DEVICE_TYPE for t in roots)


class CallingThreadEngine:
    """The autograd engine, with rustorch backward passes kept on the calling thread."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def run_backward(self, roots: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        if not _has_rustorch_root(roots):
            return self._engine.run_backward(roots, *args, **kwargs)
        previous = torch._C._is_multithreading_enabled()
        torch._C._set_multithreading_enabled(False)
        try:
            return self._engine.run_backward(roots, *args, **kwargs)
        finally:
            torch._C._set_multithreading_enabled(previous)

    def __getattr__(self, name: str) -> Any:  # queue_callback, is_checkpoint_valid, ...
        return getattr(self._engine, name)


def install() -> None:
    """Idempotent; a no-op when RUSTORCH_AUTOGRAD_DEVICE_THREAD=1."""
    if os.environ.get("RUSTORCH_AUTOGRAD_DEVICE_THREAD") == "1":
        return
    if not isinstance(Variable._execution_engine, CallingThreadEngine):
        Variable._execution_engine = CallingThreadEngine(Variable._execution_engine)
