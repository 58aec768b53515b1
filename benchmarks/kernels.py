"""Kernel benchmarks: rustorch against CPU ATen, measured in the same run.

The rustorch side runs the aten op on rustorch tensors (dispatch included), the reference the
same op on CPU tensors with the same values and strides.

Prints one JSON line per case. Both sides run at a fixed thread count (2 by default),
interleaved (rustorch, ATen, rustorch, ...) after a warm-up, and the medians are compared:
ratio = rustorch time / ATen time (goal: <= 1.0).

    python benchmarks/kernels.py                 # every case
    python benchmarks/kernels.py --only gemm     # groups, comma separated: gemm,conv
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from harness import Fn, emit, measure, parse_args, select

import rustorch_device  # noqa: F401  (registers the kernels)

# The test op library (cpp_ext/testing/, built on demand) gives the CPU clock measurement.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import testing_ext  # noqa: E402

testing_ext.load()
KERNELS = torch.ops.rustorch_kernels
DEVICE = "rustorch"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    # Builds the inputs and returns (rustorch callable, ATen callable, flop count per call).
    setup: Callable[[], tuple[Fn, Fn, float]]


def _randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype)


def _on_device(t: torch.Tensor) -> torch.Tensor:
    """The same values on the rustorch device, with the same strides (e.g. a transposed view)."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=DEVICE).copy_(t)


def mm_case(
    name: str, m: int, k: int, n: int, trans_a: bool = False, trans_b: bool = False
) -> Case:
    """C[m, n] = A[m, k] . B[k, n]; trans_* reads that operand through a transposed view."""

    def setup() -> tuple[Fn, Fn, float]:
        a = _randn(k, m).t() if trans_a else _randn(m, k)
        b = _randn(n, k).t() if trans_b else _randn(k, n)
        da, db = _on_device(a), _on_device(b)
        return (lambda: torch.mm(da, db)), (lambda: torch.mm(a, b)), 2.0 * m * n * k

    return Case(name, "gemm", setup)


def conv_case(
    name: str, n: int, c: int, hw: int, m: int, k: int, backward: bool, grad_input: bool = True
) -> Case:
    """conv2d k x k, stride 1, no padding, with bias; `backward` adds all requested gradients."""

    def setup() -> tuple[Fn, Fn, float]:
        x, w, b = _randn(n, c, hw, hw), _randn(m, c, k, k), _randn(m)
        dx, dw, db = _on_device(x), _on_device(w), _on_device(b)
        args = ([1, 1], [0, 0], [1, 1])
        out_hw = hw - k + 1
        flops = 2.0 * n * m * out_hw * out_hw * c * k * k
        if not backward:
            return (
                (lambda: torch.ops.aten.convolution(dx, dw, db, *args, False, [0, 0], 1)),
                (lambda: torch.ops.aten.convolution(x, w, b, *args, False, [0, 0], 1)),
                flops,
            )
        go = _randn(n, m, out_hw, out_hw)
        dgo = _on_device(go)
        mask = [grad_input, True, True]

        def ours() -> None:
            torch.ops.aten.convolution(dx, dw, db, *args, False, [0, 0], 1)
            torch.ops.aten.convolution_backward(dgo, dx, dw, [m], *args, False, [0, 0], 1, mask)

        def aten() -> None:
            torch.ops.aten.convolution(x, w, b, *args, False, [0, 0], 1)
            torch.ops.aten.convolution_backward(go, x, w, [m], *args, False, [0, 0], 1, mask)

        return ours, aten, flops * (3 if grad_input else 2)

    return Case(name, "conv", setup)


CASES: list[Case] = [
    mm_case("sgemm_256", 256, 256, 256),
    mm_case("sgemm_512", 512, 512, 512),
    mm_case("sgemm_1024", 1024, 1024, 1024),
    mm_case("sgemm_2048", 2048, 2048, 2048),
    # MNIST Net fc1 (9216 -> 128), batch 64: forward x . W^T and the two backward products.
    mm_case("mnist_fc1_forward", 64, 9216, 128, trans_b=True),
    mm_case("mnist_fc1_grad_input", 64, 128, 9216),
    mm_case("mnist_fc1_grad_weight", 128, 64, 9216, trans_a=True),
    # MNIST Net convs, batch 64 (conv1's input needs no gradient), and a ResNet-like layer.
    conv_case("mnist_conv1_forward", 64, 1, 28, 32, 3, backward=False),
    conv_case("mnist_conv1_fwd_bwd", 64, 1, 28, 32, 3, backward=True, grad_input=False),
    conv_case("mnist_conv2_forward", 64, 32, 26, 64, 3, backward=False),
    conv_case("mnist_conv2_fwd_bwd", 64, 32, 26, 64, 3, backward=True),
    conv_case("conv_64x56x56_b8_forward", 8, 64, 56, 64, 3, backward=False),
    conv_case("conv_64x56x56_b8_fwd_bwd", 8, 64, 56, 64, 3, backward=True),
]


def nominal_clock_ghz() -> float | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000.0
    except OSError:
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(__doc__, argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # Peak fp32 of this CPU: threads x 2 FMA pipes x 8 lanes x 2 flop per cycle (AVX2), at the
    # higher of the measured (boost, but low when the machine is busy) and nominal clocks.
    clock = KERNELS.cpu_clock_ghz()
    nominal = nominal_clock_ghz()
    peak = args.threads * 32 * max(clock, nominal or 0.0)
    selected = select(CASES, args.only, parser)
    for case in selected:
        ours_fn, aten_fn, flops = case.setup()
        ours_s, aten_s = measure(ours_fn, aten_fn, args.reps, args.min_time)
        ours, aten = statistics.median(ours_s), statistics.median(aten_s)
        row = {
            "case": case.name,
            "group": case.group,
            "rustorch_ms": round(ours * 1e3, 4),
            "aten_ms": round(aten * 1e3, 4),
            "ratio": round(ours / aten, 3),
            # Best-of: less sensitive to other processes on a shared machine.
            "ratio_min": round(min(ours_s) / min(aten_s), 3),
        }
        if flops:
            row |= {
                "rustorch_gflops": round(flops / ours * 1e-9, 1),
                "aten_gflops": round(flops / aten * 1e-9, 1),
                "rustorch_peak_fraction": round(flops / ours * 1e-9 / peak, 3),
            }
        if case.name in {"sgemm_512", "sgemm_1024", "sgemm_2048"}:  # the goals
            row["goal"] = 1.0
        row |= {"clock_ghz_measured": round(clock, 2), "clock_ghz_nominal": nominal}
        emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
