"""Autocast support of torch.rustorch (torch.cuda's names).

The cast policy itself is C++ (cpp_ext/amp/autocast.cpp: AutocastPrivateUse1 kernels with CUDA's
op lists). This module answers what torch.autocast and torch.amp.GradScaler ask the device module.
"""

from __future__ import annotations

import torch


def get_amp_supported_dtype() -> list[torch.dtype]:
    """The dtypes torch.autocast("rustorch", dtype=...) accepts."""
    return [torch.bfloat16, torch.float16]


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """bfloat16 tensors and autocast work on every rustorch device."""
    return True
