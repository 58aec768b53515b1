"""Cost of the CPU fallback: an op on rustorch tensors (through the fallback) vs the same op on
CPU tensors, in one run. One JSON line per case; goal: ratio <= 1.1 on large tensors.

Also measures both ways of returning new results (adopting the CPU result's memory vs
allocating on the device and copying).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from harness import emit, measure

import rustorch_device

LARGE = 1 << 22  # 4 Mi floats = 16 MiB
SMALL = 1 << 10


def _cases(n: int) -> dict[str, Callable[[str], Callable[[], object]]]:
    def unary(dev: str):
        x = torch.rand(n, device=dev)
        return lambda: torch.erf(x)

    def binary_cpu_scalar(dev: str):
        x = torch.rand(n, device=dev)
        s = torch.tensor(0.5)
        return lambda: torch.atan2(x, s)

    def inplace(dev: str):
        x = torch.rand(n, device=dev)
        return lambda: x.erfinv_()

    def out_arg(dev: str):
        x = torch.rand(n, device=dev)
        out = torch.empty(n, device=dev)
        return lambda: torch.erf(x, out=out)

    def strided_input(dev: str):
        x = torch.rand(2 * n, device=dev)[::2]
        return lambda: torch.erf(x)

    def cumsum(dev: str):
        x = torch.rand(n, device=dev)
        return lambda: torch.cumsum(x, 0)

    def tensor_list(dev: str):
        xs = [torch.rand(n // 8, device=dev) for _ in range(8)]
        return lambda: torch._foreach_erf(xs)

    return {
        "erf": unary,
        "atan2_cpu_scalar": binary_cpu_scalar,
        "erfinv_inplace": inplace,
        "erf_out": out_arg,
        "erf_strided": strided_input,
        "cumsum": cumsum,
        "foreach_erf": tensor_list,
    }


def main() -> None:
    for size_name, n, repeat in [("large", LARGE, 9), ("small", SMALL, 21)]:
        for mode in ["adopt", "copy"]:
            rustorch_device._C._set_fallback_output_mode(mode)
            for name, make in _cases(n).items():
                rustorch_device.reset_op_stats()
                dev_s, cpu_s = measure(make("rustorch"), make("cpu"), repeat, 0.005)
                dev_t, cpu_t = statistics.median(dev_s), statistics.median(cpu_s)
                stats = rustorch_device.op_stats()
                fallback_calls = sum(s["fallback"] for s in stats.values())
                row = {
                    "bench": "fallback",
                    "case": name,
                    "size": size_name,
                    "numel": n,
                    "output_mode": mode,
                    "path": "fallback" if fallback_calls else "native",
                    "rustorch_ms": round(dev_t * 1e3, 4),
                    "cpu_ms": round(cpu_t * 1e3, 4),
                    "ratio": round(dev_t / cpu_t, 3),
                }
                if size_name == "large" and mode == "adopt":
                    row["goal"] = 1.1
                emit(row)
    rustorch_device._C._set_fallback_output_mode("adopt")


if __name__ == "__main__":
    main()
