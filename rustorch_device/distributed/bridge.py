"""The CPU view of rustorch tensors that gloo works on.

Device memory is host memory: a contiguous rustorch tensor is handed to gloo as a CPU tensor over
the same bytes (`torch.ops.rustorch_dist.as_cpu`, no copy). Any other layout is staged through a
contiguous CPU copy that is written back once the collective has completed. A `Bridge` belongs to
one call: it keeps the rustorch tensors referenced until the work completes and maps gloo's
results back to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

DEVICE_TYPE = "rustorch"


def as_cpu(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor over the memory of rustorch tensor `t` (writes reach `t`)."""
    return torch.ops.rustorch_dist.as_cpu(t)


class Bridge:
    """Translates one collective's tensors to CPU tensors and back."""

    def __init__(self) -> None:
        self._originals: dict[int, torch.Tensor] = {}  # id(cpu tensor) -> tensor the caller gave
        self._keep: list[torch.Tensor] = []
        self._writebacks: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._after: list[Callable[[], None]] = []

    def cpu(
        self,
        t: torch.Tensor,
        *,
        output: bool,
        scale: float | torch.Tensor | None = None,
        divide: int | None = None,
    ) -> torch.Tensor:
        """The CPU tensor gloo gets for `t`.

        output: gloo writes it, so a staged copy is copied back into `t` on completion.
        scale: multiply the values gloo sends by this factor (PREMUL_SUM); `t` itself changes only
        through the write-back of an output.
        divide: divide the result in `t` by this count on completion (AVG as SUM / n).
        """
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(t).__name__}")
        if t.layout != torch.strided:
            raise ValueError(f"rgloo supports dense (strided) tensors only, got {t.layout}")
        if t.device.type == "cpu":
            alias = t
        elif t.device.type == DEVICE_TYPE:
            alias = as_cpu(t)
        else:
            raise ValueError(
                f"rgloo handles rustorch and cpu tensors, got a tensor on {t.device}"
            )
        self._keep.append(t)
        staged = alias
        if scale is not None:
            staged = alias * _scalar(scale)
        elif not alias.is_contiguous():
            staged = alias.contiguous()
        if staged is not alias and output:
            self._writebacks.append((alias, staged))
        if divide is not None:
            self._after.append(lambda: _divide_(alias, divide))
        self._originals[id(staged)] = t
        self._keep.append(staged)
        return staged

    def cpu_list(self, ts: list[torch.Tensor], *, output: bool, **kw: Any) -> list[torch.Tensor]:
        return [self.cpu(t, output=output, **kw) for t in ts]

    def after(self, fn: Callable[[], None]) -> None:
        """Runs `fn` on completion, after the write-backs (e.g. AVG's division)."""
        self._after.append(fn)

    def finish(self) -> None:
        """Copies staged outputs into the caller's tensors and runs the completion steps."""
        for alias, staged in self._writebacks:
            alias.copy_(staged)
        for fn in self._after:
            fn()

    def originals(self, value: Any) -> Any:
        """`value` (gloo's future result) with each CPU tensor replaced by the caller's tensor."""
        if isinstance(value, torch.Tensor):
            return self._originals.get(id(value), value)
        if isinstance(value, list):
            return [self.originals(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.originals(v) for v in value)
        return value


def _divide_(t: torch.Tensor, n: int) -> None:
    if t.dtype == torch.bool:
        raise ValueError("ReduceOp.AVG is not defined for bool tensors")
    if t.is_floating_point() or t.is_complex():
        t.div_(n)
    else:  # integers: truncate toward zero, as C and NCCL do
        t.copy_(torch.div(t, n, rounding_mode="trunc"))


def _scalar(factor: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(factor, torch.Tensor):
        if factor.numel() != 1:
            raise ValueError("PREMUL_SUM needs a scalar factor")
        return factor.detach().to("cpu").reshape(())
    return factor
