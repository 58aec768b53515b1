"""Where stage executions run: a local process pool (default, no server) or a Dask cluster.

Both take `submit(spec_path, done)` and call `done(result_or_exception)` from another thread.
The local pool runs `execute` inside its worker processes; Dask workers start one process per
execution (`python -m rustorch_tools.pipeline.execute SPEC`), so a stage's output never mixes
with a worker's and a killed worker leaves the execution's lock to the OS: Dask reschedules
the task elsewhere and the retry waits for, or adopts, what the first attempt did.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..store.pipelines import ExecFiles
from .execute import ATTEMPTS, RESULT

LAUNCHER_LOG = "launcher.log"

Done = Callable[[Any], None]


class LocalExecutor:
    """A pool of `workers` spawned processes (spawned, not forked: torch's threads do not
    survive a fork)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, spec_path: Path, done: Done) -> None:
        from .execute import execute

        try:
            fut = self._pool.submit(execute, str(spec_path))
        except BrokenProcessPool:  # a stage killed its worker process: start a fresh pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            fut = self._pool.submit(execute, str(spec_path))

        def relay(f: Future) -> None:
            exc = f.exception()
            done(exc if exc is not None else f.result())

        fut.add_done_callback(relay)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_in_subprocess(spec_path: str) -> dict[str, Any]:
    """One execution in a fresh interpreter; its result (or why there is none)."""
    execution = ExecFiles(Path(spec_path).parent)
    log = execution.open_log(LAUNCHER_LOG)
    try:
        proc = subprocess.run([sys.executable, "-m", "rustorch_tools.pipeline.execute", spec_path],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ}, check=False)
    finally:
        os.close(log)
    result = execution.read(RESULT)
    if proc.returncode == 0 and result is not None:
        return result
    attempts = execution.read(ATTEMPTS) or []
    failed = execution.read(f"failed-{attempts[-1]}.json") if attempts else None
    if failed is not None:
        return failed
    return {"status": "failed", "error": f"stage process exited with status {proc.returncode} "
                                         f"(see {execution.path(LAUNCHER_LOG)})"}


class DaskExecutor:
    """Submits executions to a dask.distributed scheduler (`tcp://HOST:8786`, or a Client)."""

    name = "dask"

    def __init__(self, scheduler: Any) -> None:
        from distributed import Client

        self._own = not isinstance(scheduler, Client)
        self.client = Client(scheduler, timeout="10s") if self._own else scheduler

    def submit(self, spec_path: Path, done: Done) -> None:
        import uuid

        # pure=False and a fresh key: a retry is a new task, never a cached dask result.
        fut = self.client.submit(run_in_subprocess, str(spec_path), pure=False,
                                 key=f"stage-{spec_path.parent.name}-{uuid.uuid4().hex[:8]}")

        def relay(f: Any) -> None:
            try:
                done(f.result())
            except BaseException as exc:  # noqa: BLE001 - handed to the driver, which reports it
                done(exc)

        fut.add_done_callback(relay)

    def close(self) -> None:
        if self._own:
            self.client.close()
