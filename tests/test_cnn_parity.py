"""A small MNIST-style CNN trains identically on rustorch and on the CPU."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from mnist_net import Net
from torch import nn

import rustorch_device

DEV = "rustorch"



def small_net() -> nn.Module:
    """The MNIST example's layers at a quarter of the width, for 16x16 inputs."""
    return Net(width=0.25, side=16)


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
    cpu_model = small_net().eval()  # dropout off for an exact comparison
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
    init = small_net().train()
    runs = []
    for _ in range(2):
        torch.manual_seed(42)
        runs.append(_train(copy.deepcopy(init), DEV, data, labels))
    assert runs[0] == runs[1]
