"""Builds rustorch_device._C, the C++ half of the rustorch device.

Every .cpp under cpp_ext/ goes into one extension. No -march=native: ISA-specific
kernels use function target attributes and are chosen at run time.
"""

from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = Path(__file__).parent.resolve()
SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cpp_ext").rglob("*.cpp"))

setup(
    ext_modules=[
        CppExtension(
            name="rustorch_device._C",
            sources=SOURCES,
            include_dirs=[str(ROOT / "cpp_ext")],
            # -fopenmp: at::parallel_for is inline (ATen/ParallelOpenMP.h); without the flag its
            # `#pragma omp parallel` is dropped and every kernel silently runs on one thread.
            extra_compile_args=["-O3", "-std=c++20", "-fno-math-errno", "-fopenmp", "-Wall",
                                "-Wno-unused-parameter", "-Wno-interference-size"],
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
