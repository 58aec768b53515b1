"""Random number generators of torch.rustorch (one default generator per device)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .. import _C
from ._device_index import DeviceLike, device_index


def _generator(device: DeviceLike = None) -> torch.Generator:
    idx = device_index(device)
    if not 0 <= idx < _C._device_count():
        _C._set_device(idx)  # raises the out-of-range error naming the device count
    return _C._get_default_generator(idx)


def default_generator(device: DeviceLike = None) -> torch.Generator:
    return _generator(device)


def get_rng_state(device: DeviceLike = "rustorch") -> torch.Tensor:
    """The state of `device`'s default generator as a uint8 CPU tensor."""
    return _generator(device).get_state()


def get_rng_state_all() -> list[torch.Tensor]:
    return [get_rng_state(i) for i in range(_C._device_count())]


def set_rng_state(new_state: torch.Tensor, device: DeviceLike = "rustorch") -> None:
    if not isinstance(new_state, torch.Tensor) or new_state.dtype != torch.uint8:
        raise TypeError("set_rng_state expects a torch.uint8 tensor from get_rng_state()")
    _generator(device).set_state(new_state.clone().cpu())


def set_rng_state_all(new_states: Iterable[torch.Tensor]) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def manual_seed(seed: int) -> None:
    """Seeds the current device's default generator."""
    _generator().manual_seed(int(seed))


def manual_seed_all(seed: int) -> None:
    """Seeds every device's default generator (torch.manual_seed calls this)."""
    for i in range(_C._device_count()):
        _generator(i).manual_seed(int(seed))


def seed() -> None:
    _generator().seed()


def seed_all() -> None:
    first = _generator(0)
    s = first.seed()
    for i in range(1, _C._device_count()):
        _generator(i).manual_seed(s)


def initial_seed() -> int:
    return _generator().initial_seed()
