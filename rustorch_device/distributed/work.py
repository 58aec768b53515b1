"""Works returned by rgloo: gloo's work, finished on the rustorch side.

The returned work's future completes after gloo's, once staged outputs are written back, and
yields what gloo's would, with the caller's rustorch tensors in place of the CPU aliases. Errors
(a timeout, a peer that went away) reach `wait()` and the future unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import _create_work_from_future

from .bridge import Bridge


def finished(inner: dist.Work, bridge: Bridge) -> dist.Work:
    """A work that completes when `inner` has and `bridge` has written its results back."""
    return _create_work_from_future(finished_future(inner, bridge))


def finished_future(inner: dist.Work, bridge: Bridge) -> torch.futures.Future:
    try:
        fut = inner.get_future()
    except RuntimeError:
        # gloo's send/recv and reduce_scatter_single works have no future: wait on a thread.
        return _waited_future(inner, bridge)

    def done(f: torch.futures.Future) -> Any:
        value = f.value()  # raises the collective's error into the returned future
        bridge.finish()
        return bridge.originals(value)

    return fut.then(done)


def _waited_future(inner: dist.Work, bridge: Bridge) -> torch.futures.Future:
    out: torch.futures.Future = torch.futures.Future()

    def wait() -> None:
        try:
            inner.wait()  # releases the GIL; gloo's timeout bounds it
            bridge.finish()
            out.set_result(bridge.originals(_result(inner)))
        except BaseException as err:  # noqa: BLE001  (any failure belongs to the future)
            out.set_exception(err)

    threading.Thread(target=wait, name="rgloo-wait", daemon=True).start()
    return out


def _result(inner: dist.Work) -> list[torch.Tensor]:
    try:
        return inner.result()
    except RuntimeError:  # works without a result (send) report it this way
        return []


def combined(works: list[dist.Work]) -> dist.Work:
    """One work over several (end of a coalescing block); its future yields all results."""
    futs = [w.get_future() for w in works]
    if not futs:
        done: torch.futures.Future = torch.futures.Future()
        done.set_result([])
        return _create_work_from_future(done)

    def gather(all_done: torch.futures.Future) -> list[Any]:
        out: list[Any] = []
        for f in all_done.value():
            v = f.value()
            out.extend(v if isinstance(v, list) else [v])
        return out

    return _create_work_from_future(torch.futures.collect_all(futs).then(gather))
