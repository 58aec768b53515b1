"""The datasets the config registry can build, as (train, eval) TensorLoaders.

- `mnist`: full MNIST when found (see rustorch_tools.datasets), else the shipped subset;
  `subset = true` forces the subset, `limit` keeps the first N training samples.
- `synthetic`: random images (or flat features) with labels from a fixed random linear
  teacher, so that a model can learn them; deterministic in `seed`.
- `synthetic_tokens`: sequences of a repeating random pattern for the language model.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .. import datasets
from .loaders import TensorLoader


def _loaders(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor, batch_size: int,
             eval_batch_size: int, seed: int, rank: int, world: int) -> tuple[TensorLoader, TensorLoader]:
    train = TensorLoader(x, y, batch_size, shuffle=True, seed=seed, rank=rank, world=world)
    test = TensorLoader(xt, yt, eval_batch_size, shuffle=False, drop_last=False, rank=rank, world=world)
    return train, test


def mnist(*, batch_size: int = 64, eval_batch_size: int = 1000, seed: int = 0, subset: bool = False,
          data_dir: str | None = None, limit: int | None = None, eval_limit: int | None = None,
          rank: int = 0, world: int = 1) -> tuple[TensorLoader, TensorLoader]:
    root = None if subset else datasets.resolve(data_dir)
    x, y, xt, yt = _mnist_tensors(None if root is None else str(root))
    return _loaders(x[:limit], y[:limit], xt[:eval_limit], yt[:eval_limit], batch_size, eval_batch_size,
                    seed, rank, world)


@functools.lru_cache(maxsize=1)
def _mnist_tensors(root: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded and normalized once per process (a pipeline's pool process trains many runs);
    the loaders only index these tensors, never write them."""
    if root is None:
        train, test = datasets.load_shipped("train"), datasets.load_shipped("test")
    else:
        train, test = datasets.load_full(Path(root), "train"), datasets.load_full(Path(root), "test")
    return train.normalized(), train.labels, test.normalized(), test.labels


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
