"""Backward of rustorch ops runs on the thread that calls backward() (rustorch_device/_autograd.py),
unless RUSTORCH_AUTOGRAD_DEVICE_THREAD=1 asks for PyTorch's device threads."""

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
print(torch.autograd.is_multithreading_enabled(), seen[0] == threading.get_ident(),
      float(x.grad.sum().cpu()))
"""


def test_backward_runs_on_the_calling_thread():
    assert not torch.autograd.is_multithreading_enabled()
    x = torch.randn(8, 8, device="rustorch", requires_grad=True)
    seen: list[int] = []
    y = (x @ x).relu()
    y.register_hook(lambda g: seen.append(threading.get_ident()))
    y.sum().backward()
    assert seen == [threading.get_ident()]


def test_device_thread_on_request():
    default = run_python(CHECK).split()
    device_thread = run_python(CHECK, env={"RUSTORCH_AUTOGRAD_DEVICE_THREAD": "1"}).split()
    assert default[:2] == ["False", "True"]
    assert device_thread[:2] == ["True", "False"]
    assert default[2] == device_thread[2]  # same gradient either way
