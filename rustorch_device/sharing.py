"""rustorch tensors across processes: share_memory_(), torch.multiprocessing and DataLoader
workers.

Device memory is host memory, so a rustorch storage can live in the POSIX shared memory that
CPU sharing uses (cpp_ext/runtime/ipc.cpp): `share_memory_()` moves it there once (one copy; the
storage keeps its identity, every view follows) and pickling for multiprocessing sends the CPU
handle (file descriptor or file name, per `torch.multiprocessing.get_sharing_strategy()`); the
receiving process maps the block and adopts it as a rustorch storage without a copy. Both
processes then see each other's writes, as with CPU tensors (Hogwild training, workers that
return device tensors).

PyTorch leaves both hooks to the device: `UntypedStorage.share_memory_()` is a no-op for any
device but CPU, and its multiprocessing reducer for storages calls the CPU-only
`_share_fd_cpu_` ("only available on CPU", which in a DataLoader's feeder thread became a
hang). `install()` wraps the two (and `is_shared`) so that rustorch storages take the paths
here; CPU, CUDA and meta storages take PyTorch's own code unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any

import torch

DEVICE = "rustorch"
_lock = threading.Lock()
_installed = False


def _bytes(storage: torch.UntypedStorage) -> torch.Tensor:
    """A uint8 tensor over the whole storage (the form the rustorch_ipc ops take)."""
    t = torch.empty(0, dtype=torch.uint8, device=storage.device)
    return t.set_(storage, 0, (storage.nbytes(),), (1,))


def shared_block(storage: torch.UntypedStorage) -> torch.UntypedStorage | None:
    """The CPU shared-memory storage behind a rustorch storage, None if it is not shared."""
    found = torch.ops.rustorch_ipc.shared_cpu(_bytes(storage))
    return found[0].untyped_storage() if found else None


def share_storage(storage: torch.UntypedStorage) -> torch.UntypedStorage:
    """Moves a rustorch storage into shared memory (idempotent); returns the CPU block."""
    with _lock:
        block = shared_block(storage)
        if block is None:
            block = torch.UntypedStorage._new_shared(storage.nbytes())
            torch.ops.rustorch_ipc.move_to_shared(_bytes(storage), _bytes(block))
        return block


def _rebuild_storage(rebuild: Callable[..., Any], args: tuple[Any, ...],
                     index: int) -> torch.UntypedStorage:
    block = rebuild(*args)  # PyTorch's CPU rebuild (maps the fd / file, cached per handle)
    return torch.ops.rustorch_ipc.adopt_shared(_bytes(block), index).untyped_storage()


def _rebuild_empty(index: int) -> torch.UntypedStorage:
    return torch.UntypedStorage(0, device=torch.device(DEVICE, index))


def install() -> None:
    """Wraps PyTorch's storage sharing hooks for rustorch storages (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        import torch.multiprocessing.reductions as reductions

        cpu_reduce = reductions.reduce_storage
        share = torch.UntypedStorage.share_memory_
        is_shared = torch.UntypedStorage.is_shared

        def reduce_storage(storage: torch.UntypedStorage) -> tuple[Any, ...]:
            if storage.device.type != DEVICE:
                return cpu_reduce(storage)
            index = storage.device.index or 0
            if storage.nbytes() == 0:  # empty blocks cannot be mapped (as on CPU)
                return (_rebuild_empty, (index,))
            rebuild, args = cpu_reduce(share_storage(storage))
            return (_rebuild_storage, (rebuild, args, index))

        def share_memory_(self: torch.UntypedStorage, *args: Any, **kwargs: Any):
            if self.device.type != DEVICE:
                return share(self, *args, **kwargs)
            if self.nbytes() > 0:
                share_storage(self)
            return self

        def storage_is_shared(self: torch.UntypedStorage) -> bool:
            if self.device.type != DEVICE:
                return is_shared(self)
            return shared_block(self) is not None

        reductions.reduce_storage = reduce_storage
        ForkingPickler.register(torch.UntypedStorage, reduce_storage)
        torch.UntypedStorage.share_memory_ = share_memory_  # type: ignore[method-assign]
        torch.UntypedStorage.is_shared = storage_is_shared  # type: ignore[method-assign]
        _installed = True
