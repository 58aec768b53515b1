"""aten ops that PyTorch implements for CUDA but not for the CPU (nor as a composite), and what
rustorch does with each.

Such an op cannot run on the CPU fallback. Stock code reaches some of them on any non-CPU device
(ATen picks them by `is_cuda() || is_privateuseone()`, or torch.nn accepts the PrivateUse1
device); those are served natively. The rest are picked only for CUDA tensors, or run only when
a user calls them by name; on rustorch they raise NotImplementedError naming the op and the
device (aten/fallback.cpp). `audit()` recomputes the class from the live dispatcher, so a torch
upgrade that adds one fails tests/test_device_only_ops.py until it is classified here.
docs/architecture.md ("Ops PyTorch implements only for CUDA") explains the groups.
"""

from __future__ import annotations

from typing import Literal

import torch

Status = Literal["native", "cuda-path", "explicit"]

# native: stock code reaches it on rustorch; rustorch has a kernel (cpp_ext/aten/native/).
_NATIVE = {
    # nn.LSTM / GRU / LSTMCell / GRUCell: ATen's cells call the fused ops on non-CPU devices.
    "_thnn_fused_lstm_cell": "nn.LSTM, nn.LSTMCell",
    "_thnn_fused_lstm_cell_backward_impl": "nn.LSTM, nn.LSTMCell backward",
    "_thnn_fused_gru_cell": "nn.GRU, nn.GRUCell",
    "_thnn_fused_gru_cell_backward": "nn.GRU, nn.GRUCell backward",
    # nn.SyncBatchNorm in training with 2+ ranks (torch/nn/modules/_functions.py).
    "batch_norm_stats": "nn.SyncBatchNorm",
    "batch_norm_elemt": "nn.SyncBatchNorm",
    "batch_norm_gather_stats": "nn.SyncBatchNorm (older callers)",
    "batch_norm_gather_stats_with_counts": "nn.SyncBatchNorm",
    "batch_norm_backward_reduce": "nn.SyncBatchNorm backward",
    "batch_norm_backward_elemt": "nn.SyncBatchNorm backward",
    # Tensor.record_stream (stream-aware code): aten/minimal.cpp, a no-op (work is synchronous).
    "record_stream": "Tensor.record_stream",
}

# cuda-path: chosen only for CUDA tensors (cuDNN / MIOpen / CUDA-kernel selection in ATen checks
# is_cuda(); SDPA asks no backend chooser for rustorch and always takes the math path, whose
# ops are native: docs/architecture.md, "Scaled dot-product attention").
_CUDA_PATH_PREFIXES = ("cudnn_", "_cudnn_", "miopen_", "_use_cudnn_", "_use_miopen_",
                       "_flash_attention_", "_efficient_attention_",
                       "_scaled_dot_product_cudnn_attention",
                       "_scaled_dot_product_efficient_attention",
                       "_scaled_dot_product_flash_attention", "_triton_")
_CUDA_PATH = {
    "_conv_depthwise2d": "convolution on CUDA (rustorch has its own convolution)",
    "_conv_depthwise2d.out": "convolution on CUDA",
    "conv_depthwise3d": "convolution on CUDA",
    "_fill_mem_eff_dropout_mask_": "memory-efficient attention on CUDA",
    "_fused_dropout": "legacy CUDA dropout (dropout uses native_dropout on rustorch)",
    "_masked_scale": "backward of _fused_dropout",
    "_fused_rms_norm_backward": "backward of CUDA's fused rms_norm (rustorch: composite)",
}

# explicit: no torch.nn / functional / optim path reaches them; a user calls them by name
# (int4 / semi-structured sparse / out_dtype matmuls, an out= variant).
_EXPLICIT_PREFIXES = ("_cslt_", "_sparse_semi_structured_", "_scaled_grouped_mm")
_EXPLICIT = {
    "_convert_weight_to_int4pack": "int4 weight packing",
    "_weight_int4pack_mm": "int4 matmul",
    "_to_sparse_semi_structured": "2:4 sparsity",
    "_mixed_dtypes_linear": "mixed-dtype linear",
    "mm.dtype": "out_dtype matmul",
    "mm.dtype_out": "out_dtype matmul",
    "bmm.dtype": "out_dtype matmul",
    "bmm.dtype_out": "out_dtype matmul",
    "addmm.dtype": "out_dtype matmul",
    "addmm.dtype_out": "out_dtype matmul",
    "baddbmm.dtype": "out_dtype matmul",
    "baddbmm.dtype_out": "out_dtype matmul",
    "batch_norm_elemt.out": "out= variant (SyncBatchNorm calls the functional op)",
}

_COMPOSITE_KEYS = ("CPU", "CompositeImplicitAutograd", "CompositeExplicitAutograd",
                   "CompositeExplicitAutogradNonFunctional")


def audit() -> list[str]:
    """The live class: aten ops (name.overload) with a CUDA kernel and no CPU or composite one."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    found = []
    for name in torch._C._dispatch_get_all_op_names():
        if not name.startswith("aten::") or not has(name, "CUDA"):
            continue
        if any(has(name, key) for key in _COMPOSITE_KEYS):
            continue
        found.append(name.removeprefix("aten::"))
    return sorted(found)


def classify(op: str) -> tuple[Status, str] | None:
    """(status, why) for an op of the class, None when it is not classified."""
    base = op.split(".")[0]
    if op in _NATIVE:
        return "native", _NATIVE[op]
    if op in _CUDA_PATH:
        return "cuda-path", _CUDA_PATH[op]
    if op in _EXPLICIT:
        return "explicit", _EXPLICIT[op]
    if base.startswith(_CUDA_PATH_PREFIXES):
        return "cuda-path", "cuDNN / MIOpen / CUDA attention kernels, chosen for CUDA tensors"
    if base.startswith(_EXPLICIT_PREFIXES):
        return "explicit", "sparse / scaled matmul API, called by name"
    return None


def table() -> dict[str, tuple[Status, str]]:
    """Every op of the live class with its status; raises if one is unclassified."""
    out: dict[str, tuple[Status, str]] = {}
    missing = []
    for op in audit():
        entry = classify(op)
        if entry is None:
            missing.append(op)
        else:
            out[op] = entry
    if missing:
        raise RuntimeError(f"unclassified CUDA-only aten ops: {missing}")
    return out
