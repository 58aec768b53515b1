"""A small MNIST-style CNN trains identically on rustorch and on the CPU."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

import rustorch_device

DEV = "rustorch"


class Net(nn.Module):
    """The layers of pytorch/examples' MNIST net, smaller."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 6 * 6, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def _train(model: nn.Module, device: str, data: torch.Tensor, labels: torch.Tensor) -> list[float]:
    model.to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    losses = []
    for step in range(20):
        x = data[step % 4].to(device)
        y = labels[step % 4].to(device)
        opt.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_cnn_losses_match_cpu():
    torch.manual_seed(0)
    data = torch.randn(4, 16, 1, 16, 16)
    labels = torch.randint(0, 10, (4, 16))
    cpu_model = Net().eval()  # dropout off for an exact comparison
    dev_model = copy.deepcopy(cpu_model)
    rustorch_device.reset_op_stats()
    dev_losses = _train(dev_model, DEV, data, labels)
    cpu_losses = _train(cpu_model, "cpu", data, labels)
    for step, (d, c) in enumerate(zip(dev_losses, cpu_losses, strict=True)):
        assert abs(d - c) <= 1e-5, (step, d, c)
    assert dev_losses[-1] < dev_losses[0]
    for pd, pc in zip(dev_model.parameters(), cpu_model.parameters(), strict=True):
        assert torch.allclose(pd.detach().cpu(), pc.detach(), atol=1e-5)
    stats = rustorch_device.op_stats()
    assert sum(s["native"] + s["fallback"] for s in stats.values()) > 0


def test_cnn_trains_with_dropout_reproducibly():
    torch.manual_seed(1)
    data = torch.randn(4, 8, 1, 16, 16)
    labels = torch.randint(0, 10, (4, 8))
    init = Net().train()
    runs = []
    for _ in range(2):
        torch.manual_seed(42)
        runs.append(_train(copy.deepcopy(init), DEV, data, labels))
    assert runs[0] == runs[1]
