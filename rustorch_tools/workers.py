"""Worker process pools for the tools: bounded by the CPU count, and dying with their parent.

`worker_pool(jobs)` is a ProcessPoolExecutor whose workers ask the kernel (Linux
prctl(PR_SET_PDEATHSIG)) to be killed when the process that started them dies, so that a
`kill -9` of `validate` or `index` leaves no orphan workers; elsewhere they still exit when
their task pipe closes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def bounded_jobs(jobs: int | None, limit: int | None = None) -> int:
    """`jobs` (None: all CPUs) clamped to 1 .. the CPUs this process may run on (and `limit`)."""
    cpus = cpu_count()
    n = cpus if jobs is None else max(1, min(int(jobs), cpus))
    return n if limit is None else max(1, min(n, limit))


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl: do not linger
        os._exit(1)


def worker_pool(jobs: int, spawn: bool = False) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn") if spawn else None
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_die_with_parent,
                               initargs=(os.getpid(),))
