"""Backward of a rustorch graph runs on the thread that calls backward()
(rustorch_device/_autograd.py), unless RUSTORCH_AUTOGRAD_DEVICE_THREAD=1 asks for PyTorch's device
threads; CPU-only backward passes see PyTorch's defaults unchanged."""

from __future__ import annotations

import threading

import torch
from device_helpers import run_python

import rustorch_device  # noqa: F401

CHECK = """
import threading
import torch
torch.manual_seed(0)
x = torch.randn(8, 8).to("rustorch").requires_grad_()
seen = []
y = (x @ x).relu()
y.register_hook(lambda g: seen.append(threading.get_ident()))
y.sum().backward()
print(seen[0] == threading.get_ident(), float(x.grad.sum().cpu()))
"""


def _hooked(device: str) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, bool]]]:
    x = torch.randn(8, 8, device=device, requires_grad=True)
    y = (x @ x).relu()
    seen: list[tuple[int, bool]] = []
    y.register_hook(lambda g: seen.append((threading.get_ident(),
                                           torch.autograd.is_multithreading_enabled())))
    return x, y, seen


def test_backward_and_grad_run_on_the_calling_thread():
    x, y, seen = _hooked("rustorch")
    y.sum().backward()
    x2, y2, seen2 = _hooked("rustorch")
    torch.autograd.grad(y2.sum(), x2)
    me = threading.get_ident()
    assert seen == [(me, False)] and seen2 == [(me, False)]
    assert torch.autograd.is_multithreading_enabled()  # restored after the backward


def test_cpu_backward_sees_pytorchs_defaults():
    assert torch.autograd.is_multithreading_enabled()
    x, y, seen = _hooked("cpu")
    y.sum().backward()
    assert seen == [(threading.get_ident(), True)]
    with torch.autograd.set_multithreading_enabled(False):  # the user's own setting is kept
        x, y, seen = _hooked("rustorch")
        y.sum().backward()
        assert not torch.autograd.is_multithreading_enabled()
    assert seen[0][1] is False and torch.autograd.is_multithreading_enabled()


def test_device_thread_on_request():
    default = run_python(CHECK).split()
    device_thread = run_python(CHECK, env={"RUSTORCH_AUTOGRAD_DEVICE_THREAD": "1"}).split()
    assert default[0] == "True" and device_thread[0] == "False"
    assert default[1] == device_thread[1]  # same gradient either way
