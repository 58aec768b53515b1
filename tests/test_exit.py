"""Exit codes are trustworthy: a script that ends right after backward() on rustorch exits 0.

The race (cpp_ext/runtime/autograd_exit.cpp): the autograd engine's device thread drops the last
reference to the GraphTask, whose thread-local state holds Python objects, while the main thread
already finalizes the interpreter; CPython then ends that thread inside take_gil and the process
dies with "terminate called without an active exception" (exit 134). A long GIL switch interval
makes the main thread keep the GIL until finalization, so without the fix most runs of the
script below abort. rustorch runs backward on the calling thread by default
(rustorch_device/_autograd.py); these scripts ask for the device threads, where the race lives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from device_helpers import REPO, run_python

SCRIPT = """
import sys
import torch
sys.setswitchinterval(100.0)
x = torch.randn(32, 32, device="rustorch", requires_grad=True)
(x @ x).relu().sum().backward()
"""

DEVICE_THREAD = {"RUSTORCH_AUTOGRAD_DEVICE_THREAD": "1"}


def test_quiesce_releases_the_device_threads_python_state():
    # The GraphTask keeps a copy of the caller's contextvars context; the marker in it is freed
    # only when the device thread has dropped the GraphTask, which it cannot do while the main
    # thread holds the GIL. The exit hook must let it finish.
    out = run_python(
        """
        import contextvars, sys, weakref
        import torch
        import rustorch_device

        class Marker:
            pass

        var = contextvars.ContextVar("marker")
        marker = Marker()
        ref = weakref.ref(marker)
        var.set(marker)
        del marker
        sys.setswitchinterval(100.0)
        x = torch.randn(16, 16, device="rustorch", requires_grad=True)
        (x @ x).sum().backward()
        var.set(None)
        rustorch_device._C._quiesce_autograd_device_threads()
        print("alive" if ref() is not None else "freed")
        """,
        env=DEVICE_THREAD,
        timeout=120,
    )
    assert out.strip() == "freed"


def _run_pairs(pairs: int) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("TORCH_DEVICE_BACKEND_AUTOLOAD", None)
    env.update(DEVICE_THREAD)
    codes: list[int] = []
    deadline = time.monotonic() + 60 * pairs
    for _ in range(pairs):  # two at a time, so that they load the CPU for each other
        procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            codes.append(p.returncode)
            assert p.returncode == 0, f"exit {p.returncode}: {err.decode()[-2000:]}"
    assert codes == [0] * (2 * pairs)


def test_script_ending_after_backward_exits_zero_every_time():
    _run_pairs(4)


@pytest.mark.slow
def test_script_ending_after_backward_exits_zero_thirty_times():
    _run_pairs(15)
