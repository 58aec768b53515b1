"""The MNIST CNN trained under autocast(bfloat16) on rustorch reaches float32's accuracy.

Same seed, same batches, same init: one run in float32, one under torch.autocast("rustorch",
bfloat16) (convolutions and linear layers in bfloat16, log_softmax and the loss in float32).
Short version on 8000 images of the shipped subset; the slow one trains on all 20000.
"""

from __future__ import annotations

import mnist_data as datasets
import pytest
import torch
import torch.nn.functional as F
from torch import nn

DEV = "rustorch"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.fc1 = nn.Linear(16 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return F.log_softmax(self.fc2(x), dim=1)


def _accuracy(n_train: int, dtype: torch.dtype | None, batch: int = 100) -> float:
    torch.manual_seed(0)
    train, test = datasets.load_shipped("train"), datasets.load_shipped("test")
    x, y = train.normalized()[:n_train].to(DEV), train.labels[:n_train].to(DEV)
    model = Net().to(DEV)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    amp = dict(device_type=DEV, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
    for i in range(0, n_train, batch):
        with torch.autocast(**amp):
            out = model(x[i:i + batch])
            assert out.dtype == torch.float32  # log_softmax runs in float32 under autocast
            loss = F.nll_loss(out, y[i:i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad(), torch.autocast(**amp):
        pred = model(test.normalized().to(DEV)).argmax(1).cpu()
    return (pred == test.labels).double().mean().item() * 100


def _check(n_train: int) -> None:
    fp32 = _accuracy(n_train, None)
    bf16 = _accuracy(n_train, torch.bfloat16)
    assert fp32 > 90
    assert abs(bf16 - fp32) <= 0.5, f"bfloat16 {bf16:.2f} % vs float32 {fp32:.2f} %"


def test_bf16_autocast_matches_fp32_accuracy():
    _check(8000)


@pytest.mark.slow
def test_bf16_autocast_matches_fp32_accuracy_full_subset():
    _check(20000)
