"""Trains a small CNN on the rustorch device and shows which aten ops ran natively.

`make demo` runs this until the MNIST demo exists. Data are synthetic digits-like blobs so the
demo needs no download; the loss must fall, and the op counts show native vs fallback calls.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

import rustorch_device


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout(x), 1)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def synthetic_batch(batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k is a bright square at a class-specific position plus noise: learnable fast."""
    labels = torch.randint(0, 10, (batch,), generator=gen)
    images = 0.3 * torch.randn(batch, 1, 28, 28, generator=gen)
    for i, k in enumerate(labels.tolist()):
        r, c = 2 + (k // 5) * 12, 2 + (k % 5) * 5
        images[i, 0, r : r + 8, c : c + 4] += 2.0
    return images, labels


def main() -> None:
    torch.manual_seed(0)
    device = torch.device("rustorch")
    print(f"accelerator: {torch.accelerator.current_accelerator()} "
          f"({torch.rustorch.device_count()} device)")
    model = Net().to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(0)
    rustorch_device.reset_op_stats()
    start = time.perf_counter()
    first = last = 0.0
    for step in range(30):
        x, y = synthetic_batch(64, gen)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
        last = loss.item()
        first = first or last
        if step % 10 == 0 or step == 29:
            print(f"step {step:2d}  loss {last:.4f}")
    elapsed = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        x, y = synthetic_batch(512, gen)
        acc = (model(x.to(device)).argmax(1).cpu() == y).float().mean().item()
    print(f"30 steps in {elapsed:.2f}s, loss {first:.3f} -> {last:.3f}, accuracy {acc:.1%}")
    print(f"memory allocated {torch.rustorch.memory_allocated() / 2**20:.1f} MiB, "
          f"peak {torch.rustorch.max_memory_allocated() / 2**20:.1f} MiB")

    stats = rustorch_device.op_stats()
    native = sum(s["native"] for s in stats.values())
    fallback = sum(s["fallback"] for s in stats.values())
    print(f"\naten calls: {native} native, {fallback} on the CPU fallback")
    print(f"{'op':52s} {'native':>8s} {'fallback':>9s}")
    for op, s in sorted(stats.items(), key=lambda kv: -(kv[1]["native"] + kv[1]["fallback"])):
        print(f"{op:52s} {s['native']:8d} {s['fallback']:9d}")
    if last >= first:
        raise SystemExit("demo failed: the loss did not fall")


if __name__ == "__main__":
    main()
