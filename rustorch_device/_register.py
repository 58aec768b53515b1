"""Registers rustorch with PyTorch's Python side: the backend name and torch.rustorch."""

from __future__ import annotations

import torch

_NAME = "rustorch"


def register() -> None:
    """Idempotent: a second import (e.g. importlib.reload) finds everything in place."""
    if torch._C._get_privateuse1_backend_name() != _NAME:
        torch.utils.rename_privateuse1_backend(_NAME)
    if not hasattr(torch, _NAME):
        from . import rustorch as device_module

        torch._register_device_module(_NAME, device_module)
    if not hasattr(torch.Tensor, "is_rustorch"):
        torch.utils.generate_methods_for_privateuse1_backend(
            for_tensor=True, for_module=True, for_packed_sequence=True, for_storage=True
        )
