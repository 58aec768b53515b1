"""The CNN of pytorch/examples mnist/main.py: the one definition the tests and benchmarks use
(`from mnist_net import Net` with examples/ on sys.path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The model of pytorch/examples mnist/main.py; `width` scales the channels (1 = the real
    model; smaller for quick tests) and `side` is the input's height and width."""

    def __init__(self, width: float = 1.0, side: int = 28) -> None:
        super().__init__()
        c1, c2, hidden = int(32 * width), int(64 * width), int(128 * width)
        flat = c2 * ((side - 4) // 2) ** 2
        self.conv1 = nn.Conv2d(1, c1, 3, 1)
        self.conv2 = nn.Conv2d(c1, c2, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(flat, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)
