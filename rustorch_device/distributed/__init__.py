"""torch.distributed on the rustorch device: the c10d backend "rgloo" (gloo underneath).

The backend itself is C++ (`rustorch_device._C.ProcessGroupRGloo`, cpp_ext/distributed/): it
hands an inner ProcessGroupGloo CPU views of rustorch memory and returns works whose futures
yield the caller's tensors, with no Python on the hot path. This module only registers it.

Importing this package registers the backend; `register()` is also the target of the
`torch.distributed.backends` entry point, so
`dist.init_process_group("cpu:gloo,rustorch:rgloo")` finds the backend without an import; after
it, `init_process_group()` with no backend maps the rustorch accelerator to rgloo, and rgloo
serves CPU tensors too when no other backend does. See docs/distributed.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from .. import _C

# Bound by the extension when torch has distributed support (see cpp_ext/distributed/).
ProcessGroupRGloo = getattr(_C, "ProcessGroupRGloo", None)

BACKEND_NAME = "rgloo"
DEVICE_TYPE = "rustorch"

__all__ = ["BACKEND_NAME", "ProcessGroupRGloo", "as_cpu", "register"]


def as_cpu(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor over the memory of rustorch tensor `t` (no copy; writes reach `t`)."""
    return torch.ops.rustorch_dist.as_cpu(t)


def register() -> None:
    """Registers rgloo with torch.distributed for the rustorch device (idempotent)."""
    if not dist.is_available():
        raise RuntimeError("rgloo needs torch.distributed, which this torch build lacks")
    if not dist.is_gloo_available() or ProcessGroupRGloo is None:
        raise RuntimeError("rgloo runs on gloo, which this torch build lacks")
    if BACKEND_NAME.upper() in dist.Backend._plugins:
        return
    dist.Backend.register_backend(
        BACKEND_NAME, _create, extended_api=True, devices=[DEVICE_TYPE, "cpu"]
    )


def _create(opts: Any, backend_options: Any = None) -> Any:
    """The creator torch.distributed calls with its `_DistributedBackendOptions`.

    The inner gloo group is built the way torch builds its own (GLOO_SOCKET_IFNAME, lazy init,
    timeout; like stock gloo, `pg_options` are not used), then wrapped by the C++ backend, a
    `ProcessGroupRGloo`.
    """
    gloo = dist.ProcessGroupGloo(
        opts.store, opts.group_rank, opts.group_size, timeout=opts.timeout
    )
    gloo.options.global_ranks_in_group = opts.global_ranks_in_group
    gloo.options.group_name = opts.group_id
    backend = _C._rgloo_backend(gloo, opts.group_rank, opts.group_size)
    pg = opts.process_group
    cpu = torch.device("cpu")
    if pg is not None and cpu not in pg._device_types:
        # `init_process_group()` / "rustorch:rgloo" name no CPU backend, yet barrier and object
        # collectives run on CPU tensors: serve them here (a backend named later for "cpu"
        # replaces this one).
        pg._register_backend(cpu, dist.ProcessGroup.BackendType.CUSTOM, backend)
    return backend


# Importing the package is enough to use "rgloo" (the entry point calls register() again). A torch
# without distributed/gloo support keeps the device usable; register() explains what is missing.
if dist.is_available() and dist.is_gloo_available() and ProcessGroupRGloo is not None:
    register()
