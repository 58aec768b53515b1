"""Clean interpreter exit after backward() on rustorch.

Without this, a script that ends right after backward() can die with "terminate called without
an active exception" (exit 134): the autograd engine's device thread still drops Python-owned
state while the interpreter finalizes. cpp_ext/runtime/autograd_exit.cpp explains the race; the
atexit handler below lets the device threads go idle while the interpreter is still intact.
"""

from __future__ import annotations

import atexit

from . import _C

_installed = False


def install() -> None:
    """Idempotent. Registered at import, so it runs after atexit handlers registered later."""
    global _installed
    if not _installed:
        atexit.register(_C._quiesce_autograd_device_threads)
        _installed = True
