"""The rustorch PrivateUse1 device."""


def _autoload() -> None:
    """Entry point of the `torch.backends` group, called at the end of `import torch`.

    Importing this package is the whole registration; defined before `import torch` because a
    user's `import rustorch_device` imports torch, whose autoload looks this name up on the
    partially initialized package.
    """


import torch  # noqa: E402, F401  (loads libc10/libtorch before our extension)

from . import _C  # noqa: E402


def op_stats() -> dict[str, dict[str, int]]:
    """Per aten op: how many calls ran on a native kernel and how many on the CPU fallback."""
    return {op: {"native": n, "fallback": f} for op, (n, f) in _C._op_stats().items()}


def reset_op_stats() -> None:
    _C._reset_op_stats()
