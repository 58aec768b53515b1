"""Builds rustorch_device._C, the C++ half of the rustorch device.

Every .cpp under cpp_ext/ goes into one extension, except cpp_ext/testing/ (test-only op
libraries, built on demand by tests/testing_ext.py). No -march=native: ISA-specific
kernels use function target attributes and are chosen at run time.
"""

import os
from pathlib import Path

from setuptools import setup

# Importing torch runs the `torch.backends` entry points, ours included; while building, our
# extension does not exist yet (or is stale), so the build must not autoload it.
os.environ["TORCH_DEVICE_BACKEND_AUTOLOAD"] = "0"

from torch.utils.cpp_extension import BuildExtension, CppExtension  # noqa: E402

ROOT = Path(__file__).parent.resolve()
SOURCES = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "cpp_ext").rglob("*.cpp")
    if "testing" not in p.relative_to(ROOT / "cpp_ext").parts
)

# `make` installs the package metadata with RUSTORCH_SKIP_EXT=1 and then builds the extension in
# place with ninja (`setup.py build_ext --inplace`), so it is compiled once and incrementally.
SKIP_EXT = os.environ.get("RUSTORCH_SKIP_EXT") == "1"

setup(
    ext_modules=[] if SKIP_EXT else [
        CppExtension(
            name="rustorch_device._C",
            sources=SOURCES,
            include_dirs=[str(ROOT / "cpp_ext")],
            # -fopenmp: at::parallel_for is inline (ATen/ParallelOpenMP.h); without the flag its
            # `#pragma omp parallel` is dropped and every kernel silently runs on one thread.
            extra_compile_args=["-O3", "-g0", "-std=c++20", "-fno-math-errno", "-fopenmp", "-Wall",
                                "-Wno-unused-parameter", "-Wno-interference-size"],
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
