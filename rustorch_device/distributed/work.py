"""Works returned by rgloo: gloo's work, finished on the rustorch side.

The returned work's future completes after gloo's, once staged outputs are written back, and
yields what gloo's would, with the caller's rustorch tensors in place of the CPU aliases. Errors
(a timeout, a peer that went away) reach `wait()` and the future unchanged.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .bridge import Bridge


def finished(inner: dist.Work, bridge: Bridge, result: list[torch.Tensor]) -> dist.Work:
    """A work that completes when `inner` has and `bridge` has written its results back.

    Its future yields gloo's future value mapped to the caller's tensors or, for gloo works
    without a future, `result` (the caller's output tensors, as NCCL's futures yield them).
    """
    return FutureWork(finished_future(inner, bridge, result))


def finished_future(
    inner: dist.Work, bridge: Bridge, result: list[torch.Tensor]
) -> torch.futures.Future:
    try:
        fut = inner.get_future()
    except RuntimeError:
        # gloo's send/recv and reduce_scatter_single works have no future: wait on a thread.
        return _waited_future(inner, bridge, result)

    def done(f: torch.futures.Future) -> Any:
        value = f.value()  # raises the collective's error into the returned future
        bridge.finish()
        return bridge.originals(value)

    return fut.then(done)


def _waited_future(
    inner: dist.Work, bridge: Bridge, result: list[torch.Tensor]
) -> torch.futures.Future:
    out: torch.futures.Future = torch.futures.Future()

    def wait() -> None:
        try:
            inner.wait()  # releases the GIL; gloo's timeout bounds it
            bridge.finish()
            out.set_result(result)
        except BaseException as err:  # noqa: BLE001  (any failure belongs to the future)
            out.set_exception(err)

    threading.Thread(target=wait, name="rgloo-wait", daemon=True).start()
    return out


def combined(works: list[dist.Work]) -> dist.Work:
    """One work over several (end of a coalescing block); its future yields all results."""
    futs = [w.get_future() for w in works]
    if not futs:
        done: torch.futures.Future = torch.futures.Future()
        done.set_result([])
        return FutureWork(done)

    def gather(all_done: torch.futures.Future) -> list[Any]:
        out: list[Any] = []
        for f in all_done.value():
            v = f.value()
            out.extend(v if isinstance(v, list) else [v])
        return out

    return FutureWork(torch.futures.collect_all(futs).then(gather))


class FutureWork(dist.Work):
    """A work over a future whose `wait()` raises the collective's error.

    (c10d's own future-wrapping work waits without looking at the outcome, so a synchronous
    collective whose peer died would return as if it had succeeded.)
    """

    def __init__(self, fut: torch.futures.Future) -> None:
        super().__init__()
        self._fut = fut

    def wait(self, timeout: timedelta | None = None) -> bool:
        if timeout is not None and timeout > timedelta(0):
            deadline = time.monotonic() + timeout.total_seconds()
            while not self._fut.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"rgloo: work not completed within {timeout}")
                time.sleep(0.0005)
        self._fut.wait()  # raises the collective's error
        return True

    def get_future(self) -> torch.futures.Future:
        return self._fut

    def is_completed(self) -> bool:
        return self._fut.done()

    def is_success(self) -> bool:
        if not self._fut.done():
            raise RuntimeError("rgloo: is_success() on a work that has not completed")
        try:
            self._fut.value()
        except Exception:  # noqa: BLE001  (failure is the answer)
            return False
        return True

    def exception(self) -> BaseException | None:
        try:
            self._fut.value()
        except Exception as err:  # noqa: BLE001
            return err
        return None

    def result(self) -> list[torch.Tensor]:
        value = self._fut.wait()
        return [t for t in value if isinstance(t, torch.Tensor)] if isinstance(value, list) else []
