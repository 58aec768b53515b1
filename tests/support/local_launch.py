"""Runs a script as N ranks on this machine (127.0.0.1), with a hard time limit.

A small cousin of `torchrun --standalone` for tests and benchmarks: it sets the variables of the
env:// rendezvous (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
lets every rank run to its end even when another fails (so a test can see how the survivors
stop), and kills whatever is left when the time limit passes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class RankResult:
    rank: int
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    args: list[str],
    nproc: int,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> list[RankResult]:
    """Runs `python args...` as ranks 0..nproc-1; returns when all have ended or at `timeout`."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    base = dict(os.environ if env is None else env)
    base.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
    )
    start = time.monotonic()
    procs: list[subprocess.Popen[str]] = []
    logs = []
    for rank in range(nproc):
        rank_env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank))
        # Output goes to files: pipes could fill up and stall a rank that prints a lot.
        out = _tempfile()
        err = _tempfile()
        logs.append((out, err))
        procs.append(
            subprocess.Popen(
                [sys.executable, *args], env=rank_env, cwd=cwd, stdout=out, stderr=err,
                text=True, start_new_session=True,
            )
        )
    ended: dict[int, float] = {}
    while len(ended) < nproc and time.monotonic() - start < timeout:
        for rank, p in enumerate(procs):
            if rank not in ended and p.poll() is not None:
                ended[rank] = time.monotonic() - start
        time.sleep(0.05)
    results = []
    for rank, p in enumerate(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)  # the rank's own session only
            p.wait()
            code: int | None = None
        else:
            code = p.returncode
        out, err = logs[rank]
        results.append(
            RankResult(rank, code, _read(out), _read(err), ended.get(rank, timeout))
        )
    return results


def _tempfile() -> IO[str]:
    return tempfile.TemporaryFile(mode="w+", encoding="utf-8")


def _read(f: IO[str]) -> str:
    f.seek(0)
    text = f.read()
    f.close()
    return text
