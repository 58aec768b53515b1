"""Builds and loads the test-only C++ op library (cpp_ext/testing/) on demand.

The shipped extension (rustorch_device._C) holds no test hooks; this library registers
`torch.ops.rustorch_kernels.*` (the GEMM and conv kernels on CPU tensors, the allocator's size
classes) and links against the already loaded `_C`, so its kernels are the shipped ones. The
build (ninja, incremental) lives in build/testing_ext/; the first one takes about a minute.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.utils.cpp_extension

import rustorch_device

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "cpp_ext" / "testing"
BUILD = ROOT / "build" / "testing_ext"
_loaded = False


def load() -> None:
    """Makes torch.ops.rustorch_kernels available (idempotent)."""
    global _loaded
    if _loaded:
        return
    so = Path(rustorch_device._C.__file__).resolve()
    BUILD.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MAX_JOBS", "2")
    torch.utils.cpp_extension.load(
        name="rustorch_testing_ext",
        sources=sorted(str(p) for p in SOURCES.glob("*.cpp")),
        extra_include_paths=[str(ROOT / "cpp_ext")],
        extra_cflags=["-O2", "-g0", "-std=c++20"],
        # Linking against the loaded _C (same file, so the loader reuses it) gives the library
        # the shipped kernels instead of a second copy of them.
        extra_ldflags=[str(so), f"-Wl,-rpath,{so.parent}"],
        build_directory=str(BUILD),
        is_python_module=False,
        verbose=False,
    )
    _loaded = True
