"""The digests of a checkpoint file: SHA-256 (what every artifact of a run carries) and BLAKE3
(format 2; as collision resistant for this purpose, and several times faster to verify).

Both are computed in one streaming pass each, with a snapshot at the position of the file's own
digest tail (`inner`: every byte before that tail) and at the end (`whole`: the whole file, what
manifest.json and `latest` record). The hash loops release the GIL, so they run in threads next
to the writer (save) or next to each other (load with `verify="full"`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import blake3

SHA256 = "sha256"
BLAKE3 = "blake3"
ALGORITHMS = (SHA256, BLAKE3)


def new_hasher(algorithm: str, threads: int = 1) -> Any:
    """A fresh hasher; BLAKE3 may use up to `threads` threads on large updates."""
    if algorithm == SHA256:
        return hashlib.sha256()
    if algorithm == BLAKE3:
        return blake3.blake3(max_threads=max(1, threads))
    raise ValueError(f"unknown digest {algorithm!r}; known: {', '.join(ALGORITHMS)}")


def inner_and_whole(algorithm: str, data: memoryview, cut: int, threads: int = 1) -> tuple[bytes, str]:
    """(digest of data[:cut], hex digest of all of data), in one pass over `data`."""
    h = new_hasher(algorithm, threads)
    h.update(data[:cut])
    inner = h.digest()  # a snapshot: both hashers keep going after digest()
    h.update(data[cut:])
    return inner, h.hexdigest()


class OrderedHasher:
    """Feeds chunks to one hasher in order on its own thread (the caller writes meanwhile).

    `submit` returns at once; `wait` re-raises the first error of the hashing thread.
    """

    def __init__(self, hasher: Any, name: str) -> None:
        self.hasher = hasher
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ckpt-{name}")
        self._pending: list[Future[Any]] = []

    def submit(self, chunk: memoryview) -> None:
        self._pending.append(self._pool.submit(self.hasher.update, chunk))

    def wait(self) -> None:
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)


def run_concurrently(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """Results of `jobs`, the first in this thread and the others on helper threads."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs) - 1, thread_name_prefix="ckpt-verify") as pool:
        others = [pool.submit(job) for job in jobs[1:]]
        first = jobs[0]()
        return [first] + [f.result() for f in others]
