"""Backward of rustorch ops runs on the thread that calls backward(), as for CPU tensors.

PyTorch's autograd engine gives every non-CPU device type a worker thread per device and runs the
backward of that device's ops there, while the calling thread waits. For rustorch (synchronous,
host memory) that thread buys nothing and costs twice: two thread hand-offs per backward() call
(~35 us, a fifth of a 64x10 cross-entropy forward+backward), and a second OpenMP team, whose
threads compete with the calling thread's team for the same cores (an LSTM train step on 2
threads: 505 ms with the device thread, 345 ms without, preliminary).

`torch.autograd.set_multithreading_enabled(False)` (the mode AOTAutograd and compiled autograd
use) keeps the whole backward on the calling thread. It is a per-thread setting that backward
reads from the calling thread; importing rustorch sets it for the importing thread (with the
`torch.backends` entry point, the thread that imports torch, normally the main thread). CPU-only
backward runs on the calling thread either way, so CPU results and timing do not change; only
`torch.autograd.is_multithreading_enabled()` reads False there. RUSTORCH_AUTOGRAD_DEVICE_THREAD=1
keeps PyTorch's default (device threads).
"""

from __future__ import annotations

import os

import torch


def install() -> None:
    """Idempotent; a no-op when RUSTORCH_AUTOGRAD_DEVICE_THREAD=1."""
    if os.environ.get("RUSTORCH_AUTOGRAD_DEVICE_THREAD") == "1":
        return
    torch._C._set_multithreading_enabled(False)
