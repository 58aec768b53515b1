"""The rustorch PrivateUse1 device.

Importing this package registers the device: the C++ runtime (allocator, guard, hooks,
generators, minimal ops, the counted CPU fallback) loads with `_C`, and `_register` names the
backend "rustorch" and installs `torch.rustorch`. With the `torch.backends` entry point this
happens during `import torch` itself.
"""


def _autoload() -> None:
    """Entry point of the `torch.backends` group, called at the end of `import torch`.

    Importing this package is the whole registration; defined before `import torch` because a
    user's `import rustorch_device` imports torch, whose autoload looks this name up on the
    partially initialized package.
    """


import torch  # noqa: E402, F401  (loads libc10/libtorch before our extension)

from . import _C, _register  # noqa: E402, F401  (_C: the runtime registers on load)

_register.register()

from . import _exit  # noqa: E402

_exit.install()

from . import _autograd  # noqa: E402  (backward on the calling thread)

_autograd.install()

from . import sharing as _sharing  # noqa: E402  (rustorch storages across processes)

_sharing.install()

from .fallback import op_stats, reset_op_stats, set_fallback_policy  # noqa: E402

__all__ = ["op_stats", "reset_op_stats", "set_fallback_policy"]

# Registers the `rgloo` c10d backend so that a bare init_process_group() maps rustorch to it.
from . import distributed as _distributed  # noqa: E402, F401
