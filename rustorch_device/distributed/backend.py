"""ProcessGroupRGloo: the c10d backend of the rustorch device, on PyTorch's own gloo engine.

Every collective is gloo's (same algorithms, same transport, same timeouts); this class only hands
gloo CPU views of rustorch memory (see bridge.py) and returns works whose futures yield the
caller's tensors. It also serves CPU tensors, passed straight through, so that one backend can
cover both devices of a process group. What gloo lacks is composed here from what it has:
ReduceOp.AVG (SUM, then a division), PREMUL_SUM (scaled inputs, then SUM) and coalescing blocks
(the works issued inside are gathered into one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import (
    AllgatherOptions,
    AllreduceCoalescedOptions,
    AllreduceOptions,
    AllToAllOptions,
    BarrierOptions,
    BroadcastOptions,
    GatherOptions,
    ProcessGroupGloo,
    ReduceOp,
    ReduceOptions,
    ReduceScatterOptions,
    ScatterOptions,
)
from torch._C._distributed_c10d import (
    Backend as C10dBackend,
)

from .bridge import Bridge
from .work import combined, finished

BACKEND_NAME = "rgloo"

# ReduceOps gloo runs itself; AVG and PREMUL_SUM are built on SUM below.
_GLOO_OPS = {
    ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX,
    ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR,
}


class ProcessGroupRGloo(C10dBackend):
    """A c10d Backend for rustorch (and CPU) tensors; one inner ProcessGroupGloo does the work."""

    def __init__(self, gloo: ProcessGroupGloo, rank: int, size: int) -> None:
        super().__init__(rank, size)
        self._gloo = gloo
        self._coalesced: list[dist.Work] | None = None

    # -- identity and settings -------------------------------------------------------------
    def getBackendName(self) -> str:  # noqa: N802  (the C++ virtual pybind looks up)
        return BACKEND_NAME

    @property
    def options(self) -> C10dBackend.Options:
        return self._gloo.options

    @property
    def supports_coalescing(self) -> bool:
        return True

    def set_timeout(self, timeout: timedelta) -> None:
        self._gloo._set_default_timeout(timeout)

    def _set_default_timeout(self, timeout: timedelta) -> None:
        self._gloo._set_default_timeout(timeout)

    def abort(self) -> None:
        self._gloo.abort()

    def shutdown(self) -> None:
        self._gloo.shutdown()

    @property
    def gloo(self) -> ProcessGroupGloo:
        """The inner gloo process group (for diagnostics)."""
        return self._gloo

    # -- coalescing --------------------------------------------------------------------------
    def start_coalescing(self) -> None:
        if self._coalesced is not None:
            raise RuntimeError("rgloo: start_coalescing called inside a coalescing block")
        self._coalesced = []

    def end_coalescing(self) -> dist.Work:
        if self._coalesced is None:
            raise RuntimeError("rgloo: end_coalescing called without start_coalescing")
        works, self._coalesced = self._coalesced, None
        return combined(works)

    def _issued(self, work: dist.Work) -> dist.Work:
        if self._coalesced is not None:
            self._coalesced.append(work)
        return work

    # -- reductions --------------------------------------------------------------------------
    def allreduce(self, tensors: list[torch.Tensor], opts: AllreduceOptions) -> dist.Work:
        b = Bridge()
        kw = self._reduce_kw(opts.reduceOp, tensors)
        cpu = b.cpu_list(tensors, output=True, **kw)
        inner = AllreduceOptions()
        inner.reduceOp = _gloo_op(opts.reduceOp)
        inner.timeout = opts.timeout
        return self._issued(finished(self._gloo.allreduce(cpu, inner), b, tensors))

    def allreduce_coalesced(
        self, tensors: list[torch.Tensor], opts: AllreduceCoalescedOptions
    ) -> dist.Work:
        b = Bridge()
        kw = self._reduce_kw(opts.reduceOp, tensors)
        cpu = b.cpu_list(tensors, output=True, **kw)
        inner = AllreduceCoalescedOptions()
        inner.reduceOp = _gloo_op(opts.reduceOp)
        inner.timeout = opts.timeout
        return self._issued(finished(self._gloo.allreduce_coalesced(cpu, inner), b, tensors))

    def reduce(self, tensors: list[torch.Tensor], opts: ReduceOptions) -> dist.Work:
        b = Bridge()
        kw = self._reduce_kw(opts.reduceOp, tensors)
        root = self.rank() == opts.rootRank
        if not root:
            kw.pop("divide", None)  # only the root holds the result
        # A staged copy (PREMUL_SUM, strided) goes back on the root only: elsewhere the input
        # keeps its values, whatever gloo left in its buffer.
        cpu = b.cpu_list(tensors, output=root, **kw)
        inner = ReduceOptions()
        inner.reduceOp = _gloo_op(opts.reduceOp)
        inner.rootRank = opts.rootRank
        inner.rootTensor = opts.rootTensor
        inner.timeout = opts.timeout
        return self._issued(finished(self._gloo.reduce(cpu, inner), b, tensors))

    def reduce_scatter(
        self,
        outputs: list[torch.Tensor],
        inputs: list[list[torch.Tensor]],
        opts: ReduceScatterOptions,
    ) -> dist.Work:
        b = Bridge()
        scale, divide = self._reduce_parts(opts.reduceOp, outputs)
        out = b.cpu_list(outputs, output=True, divide=divide)
        inp = [b.cpu_list(ts, output=False, scale=scale) for ts in inputs]
        return self._issued(
            finished(self._gloo.reduce_scatter(out, inp, self._rs_opts(opts)), b, outputs)
        )

    def reduce_scatter_single(
        self, output: torch.Tensor, input: torch.Tensor, opts: ReduceScatterOptions
    ) -> dist.Work:
        b = Bridge()
        scale, divide = self._reduce_parts(opts.reduceOp, [output])
        out = b.cpu(output, output=True, divide=divide)
        inp = b.cpu(input, output=False, scale=scale)
        return self._issued(
            finished(self._gloo.reduce_scatter_single(out, inp, self._rs_opts(opts)), b, [output])
        )

    def reduce_scatter_single_coalesced(
        self,
        outputs: list[torch.Tensor],
        inputs: list[torch.Tensor],
        opts: ReduceScatterOptions,
    ) -> dist.Work:
        works = [self.reduce_scatter_single(o, i, opts) for o, i in zip(outputs, inputs, strict=True)]
        return combined(works)

    # -- data movement -----------------------------------------------------------------------
    def broadcast(self, tensors: list[torch.Tensor], opts: BroadcastOptions) -> dist.Work:
        b = Bridge()
        cpu = b.cpu_list(tensors, output=True)
        return self._issued(finished(self._gloo.broadcast(cpu, opts), b, tensors))

    def allgather(
        self,
        outputs: list[list[torch.Tensor]],
        inputs: list[torch.Tensor],
        opts: AllgatherOptions,
    ) -> dist.Work:
        b = Bridge()
        out = [b.cpu_list(ts, output=True) for ts in outputs]
        inp = b.cpu_list(inputs, output=False)
        return self._issued(finished(self._gloo.allgather(out, inp, opts), b, _flat(outputs)))

    def all_gather_single(
        self, output: torch.Tensor, input: torch.Tensor, opts: AllgatherOptions
    ) -> dist.Work:
        b = Bridge()
        out = b.cpu(output, output=True)
        inp = b.cpu(input, output=False)
        # Like NCCL, accept any contiguous output of world_size * input.numel() elements (e.g.
        # SyncBatchNorm's [1, W * n] for an [n] input); gloo splits the output along dim 0.
        if (out.is_contiguous() and inp.dim() > 0 and out.numel() == inp.numel() * self.size()
                and out.shape[0] != inp.shape[0] * self.size()):
            out = out.view(-1, *inp.shape[1:])
        return self._issued(finished(self._gloo.all_gather_single(out, inp, opts), b, [output]))

    def allgather_coalesced(
        self,
        outputs: list[list[torch.Tensor]],
        inputs: list[torch.Tensor],
        opts: AllgatherOptions,
    ) -> dist.Work:
        b = Bridge()
        out = [b.cpu_list(ts, output=True) for ts in outputs]
        inp = b.cpu_list(inputs, output=False)
        return self._issued(finished(self._gloo.allgather_coalesced(out, inp, opts), b, _flat(outputs)))

    def all_gather_single_coalesced(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: AllgatherOptions
    ) -> dist.Work:
        b = Bridge()
        out = b.cpu_list(outputs, output=True)
        inp = b.cpu_list(inputs, output=False)
        return self._issued(
            finished(self._gloo.all_gather_single_coalesced(out, inp, opts), b, outputs)
        )

    def gather(
        self,
        outputs: list[list[torch.Tensor]],
        inputs: list[torch.Tensor],
        opts: GatherOptions,
    ) -> dist.Work:
        b = Bridge()
        out = [b.cpu_list(ts, output=True) for ts in outputs]
        inp = b.cpu_list(inputs, output=False)
        return self._issued(finished(self._gloo.gather(out, inp, opts), b, _flat(outputs)))

    def scatter(
        self,
        outputs: list[torch.Tensor],
        inputs: list[list[torch.Tensor]],
        opts: ScatterOptions,
    ) -> dist.Work:
        b = Bridge()
        out = b.cpu_list(outputs, output=True)
        inp = [b.cpu_list(ts, output=False) for ts in inputs]
        return self._issued(finished(self._gloo.scatter(out, inp, opts), b, outputs))

    def all_to_all_single(
        self,
        output: torch.Tensor,
        input: torch.Tensor,
        output_split_sizes: list[int],
        input_split_sizes: list[int],
        opts: AllToAllOptions,
    ) -> dist.Work:
        b = Bridge()
        out = b.cpu(output, output=True)
        inp = b.cpu(input, output=False)
        work = self._gloo.all_to_all_single(out, inp, output_split_sizes, input_split_sizes, opts)
        return self._issued(finished(work, b, [output]))

    def alltoall(
        self, outputs: list[torch.Tensor], inputs: list[torch.Tensor], opts: AllToAllOptions
    ) -> dist.Work:
        b = Bridge()
        out = b.cpu_list(outputs, output=True)
        inp = b.cpu_list(inputs, output=False)
        return self._issued(finished(self._gloo.alltoall(out, inp, opts), b, outputs))

    # -- point to point and barrier ----------------------------------------------------------
    def send(self, tensors: list[torch.Tensor], dst: int, tag: int) -> dist.Work:
        b = Bridge()
        cpu = b.cpu_list(tensors, output=False)
        return self._issued(finished(self._gloo.send(cpu, dst, tag), b, tensors))

    def recv(self, tensors: list[torch.Tensor], src: int, tag: int) -> dist.Work:
        b = Bridge()
        cpu = b.cpu_list(tensors, output=True)
        return self._issued(finished(self._gloo.recv(cpu, src, tag), b, tensors))

    def recv_anysource(self, tensors: list[torch.Tensor], tag: int) -> dist.Work:
        b = Bridge()
        cpu = b.cpu_list(tensors, output=True)
        return self._issued(finished(self._gloo.recv_anysource(cpu, tag), b, tensors))

    def barrier(self, opts: BarrierOptions) -> dist.Work:
        return self._issued(self._gloo.barrier(opts))

    # -- helpers -----------------------------------------------------------------------------
    def _reduce_parts(
        self, op: ReduceOp, tensors: list[torch.Tensor]
    ) -> tuple[float | torch.Tensor | None, int | None]:
        """(premultiply factor, divisor) that turn `op` into gloo's SUM, or (None, None)."""
        kind = _kind(op)
        if kind == ReduceOp.AVG:
            if any(t.dtype == torch.bool for t in tensors):
                raise ValueError("rgloo: ReduceOp.AVG is not defined for bool tensors")
            return None, self.size()
        if kind == ReduceOp.PREMUL_SUM:
            return op.factor, None
        if kind not in _GLOO_OPS:
            raise ValueError(f"rgloo: unsupported reduce op {op}")
        return None, None

    def _reduce_kw(self, op: ReduceOp, tensors: list[torch.Tensor]) -> dict[str, Any]:
        scale, divide = self._reduce_parts(op, tensors)
        return {"scale": scale, "divide": divide}

    @staticmethod
    def _rs_opts(opts: ReduceScatterOptions) -> ReduceScatterOptions:
        inner = ReduceScatterOptions()
        inner.reduceOp = _gloo_op(opts.reduceOp)
        inner.timeout = opts.timeout
        return inner


def _flat(lists: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [t for ts in lists for t in ts]


def _kind(op: ReduceOp | ReduceOp.RedOpType) -> ReduceOp.RedOpType:
    return op.op if isinstance(op, ReduceOp) else op


def _gloo_op(op: ReduceOp) -> ReduceOp:
    if _kind(op) in (ReduceOp.AVG, ReduceOp.PREMUL_SUM):
        return ReduceOp(ReduceOp.SUM)
    return op
