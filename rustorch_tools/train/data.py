"""The datasets the config registry can build, as (train, eval) TensorLoaders.

- `mnist`: MNIST (or any 28 x 28, 10-class set in its IDX format: Fashion-MNIST, KMNIST) from
  the folder `root` names (see `idx`: the files directly inside, in `root/raw/` or in
  torchvision's `root/MNIST/raw/`), e.g. the full set or `examples/data/mnist-subset`; nothing
  else is searched. `limit` / `eval_limit` keep the first N training / test samples.
- `synthetic`: random images (or flat features) with labels from a fixed random linear
  teacher, so that a model can learn them; deterministic in `seed`.
- `synthetic_tokens`: sequences of a repeating random pattern for the language model.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from . import idx
from .loaders import TensorLoader


def _loaders(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor, batch_size: int,
             eval_batch_size: int, seed: int, rank: int, world: int) -> tuple[TensorLoader, TensorLoader]:
    train = TensorLoader(x, y, batch_size, shuffle=True, seed=seed, rank=rank, world=world)
    test = TensorLoader(xt, yt, eval_batch_size, shuffle=False, drop_last=False, rank=rank, world=world)
    return train, test


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the normalization of the pytorch/examples MNIST script


def mnist(*, root: str, batch_size: int = 64, eval_batch_size: int = 1000, seed: int = 0,
          limit: int | None = None, eval_limit: int | None = None, mean: float = MNIST_MEAN,
          std: float = MNIST_STD, rank: int = 0, world: int = 1) -> tuple[TensorLoader, TensorLoader]:
    x, y, xt, yt = _mnist_tensors(*_identity(root), mean, std)
    return _loaders(x[:limit], y[:limit], xt[:eval_limit], yt[:eval_limit], batch_size, eval_batch_size,
                    seed, rank, world)


def mnist_files(root: str | os.PathLike[str]) -> list[Path]:
    """The four IDX files `mnist` reads under `root` (what a replay record digests)."""
    return [p for split in idx.SPLITS for p in idx.split_files(root, split)]


def _identity(root: str) -> tuple[str, tuple[tuple[str, int, int, int], ...]]:
    """The folder and its files' (path, size, mtime, inode): the cache key, so that a file
    replaced between two trainings in one process is read again."""
    stats = []
    for path in mnist_files(root):
        st = path.stat()
        stats.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    return str(root), tuple(stats)


@functools.lru_cache(maxsize=2)
def _mnist_tensors(root: str, _files: tuple[tuple[str, int, int, int], ...], mean: float,
                   std: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded and normalized once per process (a pipeline's pool process trains many runs);
    the loaders only index these tensors, never write them."""
    train, test = idx.read_split(root, "train"), idx.read_split(root, "test")
    for split in (train, test):
        if tuple(split.images.shape[1:]) != (28, 28):
            raise idx.IdxFormatError(f"{split.files[0]}: images are {tuple(split.images.shape[1:])}, "
                                     "not 28 x 28")
    return train.normalized(mean, std), train.labels, test.normalized(mean, std), test.labels


def synthetic(*, batch_size: int = 32, eval_batch_size: int = 256, seed: int = 0, samples: int = 512,
              eval_samples: int = 256, shape: list[int] | None = None, num_classes: int = 10,
              rank: int = 0, world: int = 1) -> tuple[TensorLoader, TensorLoader]:
    shape = list(shape) if shape is not None else [1, 28, 28]
    g = torch.Generator().manual_seed(seed)
    features = 1
    for d in shape:
        features *= d
    teacher = torch.randn(features, num_classes, generator=g)
    x = torch.randn(samples + eval_samples, *shape, generator=g)
    y = (x.reshape(len(x), -1) @ teacher).argmax(dim=1)
    return _loaders(x[:samples], y[:samples], x[samples:], y[samples:], batch_size, eval_batch_size,
                    seed, rank, world)


def synthetic_tokens(*, batch_size: int = 16, eval_batch_size: int = 64, seed: int = 0, samples: int = 256,
                     eval_samples: int = 64, seq_len: int = 32, vocab: int = 64, period: int = 8,
                     rank: int = 0, world: int = 1) -> tuple[TensorLoader, TensorLoader]:
    g = torch.Generator().manual_seed(seed)
    n = samples + eval_samples
    patterns = torch.randint(0, vocab, (n, period), generator=g)
    seq = patterns.repeat(1, (seq_len + 1) // period + 1)[:, :seq_len + 1]
    x, y = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    return _loaders(x[:samples], y[:samples], x[samples:], y[samples:], batch_size, eval_batch_size,
                    seed, rank, world)
