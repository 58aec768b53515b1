"""Works returned by rgloo: gloo's work, finished on the rustorch side.

`wait()` waits on gloo's work in the caller's thread (errors raise there), then writes staged
outputs back. `get_future()` builds, on first use, a future that completes after gloo's and
yields what gloo's would, with the caller's rustorch tensors in place of the CPU aliases (DDP's
reducer reads its bucket from it). The write-back runs once, on whichever path gets there first.
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
    """The work for the caller. `result`: what its future yields when gloo's work has no future
    (the caller's output tensors, as NCCL's futures yield them)."""
    return BridgedWork(inner, bridge, result)


class BridgedWork(dist.Work):
    def __init__(self, inner: dist.Work, bridge: Bridge, result: list[torch.Tensor]) -> None:
        super().__init__()
        self._inner, self._bridge, self._result = inner, bridge, result
        self._lock = threading.Lock()  # the write-back runs once
        self._fut_lock = threading.Lock()  # separate: `then` may run its callback inline
        self._finished = False
        self._fut: torch.futures.Future | None = None

    def _finish(self) -> None:
        with self._lock:
            if not self._finished:
                self._bridge.finish()
                self._finished = True

    def wait(self, timeout: timedelta = timedelta(0)) -> bool:
        self._inner.wait(timeout)  # raises gloo's error: a timeout, a peer that went away
        self._finish()
        return True

    def is_completed(self) -> bool:
        if self._finished:
            return True
        if self._inner.is_completed() and self._inner.is_success():
            self._finish()
            return True
        return self._inner.is_completed()

    def is_success(self) -> bool:
        return self._inner.is_success()

    def exception(self) -> Any:
        return self._inner.exception()

    def result(self) -> list[torch.Tensor]:
        self.wait()
        return self._result

    def get_future(self) -> torch.futures.Future:
        with self._fut_lock:
            if self._fut is None:
                self._fut = self._make_future()
            return self._fut

    def _make_future(self) -> torch.futures.Future:
        try:
            fut = self._inner.get_future()
        except RuntimeError:
            # gloo's send/recv and reduce_scatter_single works have no future: wait on a thread.
            return _waited_future(self)

        def done(f: torch.futures.Future) -> Any:
            value = f.value()  # raises the collective's error into the returned future
            self._finish()
            return self._bridge.originals(value)

        return fut.then(done)


def _waited_future(work: BridgedWork) -> torch.futures.Future:
    out: torch.futures.Future = torch.futures.Future()

    def wait() -> None:
        try:
            work.wait()  # gloo's wait releases the GIL; the group's timeout bounds it
            out.set_result(work._result)
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
    call whose peer died would return as if it had succeeded.)
    """

    def __init__(self, fut: torch.futures.Future) -> None:
        super().__init__()
        self._fut = fut

    def wait(self, timeout: timedelta = timedelta(0)) -> bool:
        if timeout > timedelta(0):
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
        return self.exception() is None

    def exception(self) -> BaseException | None:
        if not self._fut.done():
            return None
        try:
            self._fut.value()
        except Exception as err:  # noqa: BLE001  (the failure is the answer)
            return err
        return None

    def result(self) -> list[torch.Tensor]:
        value = self._fut.wait()
        return [t for t in value if isinstance(t, torch.Tensor)] if isinstance(value, list) else []
