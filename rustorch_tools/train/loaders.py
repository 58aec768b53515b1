"""In-memory batch loaders whose order is a pure function of (seed, epoch).

A resumed run must see exactly the batches the interrupted one would have seen, so the
shuffle order is never drawn from a global generator: epoch e uses a generator seeded with
(seed, e), and `batches(epoch, start=k)` skips the first k batches without touching data.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorLoader:
    """Batches of (inputs, targets) from two tensors held in host memory.

    `drop_last=True` keeps every batch the same shape (a ragged last batch would make
    torch.compile recompile). With DDP, `rank`/`world` give each rank a disjoint shard of
    the same per-epoch permutation.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"inputs ({len(inputs)}) and targets ({len(targets)}) differ in length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world of {world}")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.rank, self.world = drop_last, rank, world

    def _indices(self, epoch: int) -> torch.Tensor:
        n = len(self.targets)
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        return order[self.rank::self.world]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.targets), self.world))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch` from batch index `start` on."""
        order = self._indices(epoch)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.inputs[idx], self.targets[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(0)
