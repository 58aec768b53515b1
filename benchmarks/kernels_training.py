"""Training-path benchmarks: rustorch against CPU ATen, measured in the same run.

One JSON line per case. Both sides run at a fixed thread count (2 by default), interleaved
(rustorch, ATen, rustorch, ...) after a warm-up; ratio = median rustorch time / median ATen time
(goal: <= 1.0). Cases: cross-entropy forward+backward, relu, max_pool2d, dropout and an Adadelta
step at MNIST shapes, and the whole MNIST Net training step (batch 64, Adadelta).

    python benchmarks/kernels_training.py                  # every case
    python benchmarks/kernels_training.py --only loss,step # groups or case names
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from harness import Fn, measure, parse_args, select

import rustorch_device

DEVICE = "rustorch"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    # Builds inputs on both sides; returns (rustorch callable, ATen callable).
    setup: Callable[[], tuple[Fn, Fn]]


def _pair(*shape: int, requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    cpu = torch.randn(*shape)
    dev = cpu.to(DEVICE)
    return dev.requires_grad_(requires_grad), cpu.requires_grad_(requires_grad)


def cross_entropy_case(n: int, c: int) -> Case:
    def setup() -> tuple[Fn, Fn]:
        x_dev, x_cpu = _pair(n, c, requires_grad=True)
        t_cpu = torch.randint(0, c, (n,))
        t_dev = t_cpu.to(DEVICE)

        def run(x: torch.Tensor, t: torch.Tensor) -> Fn:
            return lambda: F.cross_entropy(x, t).backward()

        return run(x_dev, t_dev), run(x_cpu, t_cpu)

    return Case(f"cross_entropy_fwd_bwd_{n}x{c}", "loss", setup)


def relu_case(shape: tuple[int, ...]) -> Case:
    def setup() -> tuple[Fn, Fn]:
        x_dev, x_cpu = _pair(*shape)
        g_dev, g_cpu = _pair(*shape)

        def run(x: torch.Tensor, g: torch.Tensor) -> Fn:
            return lambda: torch.ops.aten.threshold_backward(g, torch.relu(x), 0)

        return run(x_dev, g_dev), run(x_cpu, g_cpu)

    return Case("relu_fwd_bwd_" + "x".join(map(str, shape)), "activation", setup)


def maxpool_case(shape: tuple[int, ...]) -> Case:
    def setup() -> tuple[Fn, Fn]:
        x_dev, x_cpu = _pair(*shape, requires_grad=True)
        out_shape = (*shape[:2], shape[2] // 2, shape[3] // 2)
        g_dev, g_cpu = _pair(*out_shape)

        def run(x: torch.Tensor, g: torch.Tensor) -> Fn:
            return lambda: F.max_pool2d(x, 2).backward(g)

        return run(x_dev, g_dev), run(x_cpu, g_cpu)

    return Case("max_pool2d_fwd_bwd_" + "x".join(map(str, shape)), "pool", setup)


def dropout_case(shape: tuple[int, ...], p: float) -> Case:
    def setup() -> tuple[Fn, Fn]:
        x_dev, x_cpu = _pair(*shape, requires_grad=True)
        g_dev, g_cpu = _pair(*shape)

        def run(x: torch.Tensor, g: torch.Tensor) -> Fn:
            return lambda: F.dropout(x, p, training=True).backward(g)

        return run(x_dev, g_dev), run(x_cpu, g_cpu)

    return Case(f"dropout_p{p}_fwd_bwd_" + "x".join(map(str, shape)), "dropout", setup)


class Net(nn.Module):
    """The model of pytorch/examples mnist/main.py."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def adadelta_case() -> Case:
    """One Adadelta step (foreach) over the MNIST Net's parameters, gradients already set."""

    def setup() -> tuple[Fn, Fn]:
        def make(device: str) -> Fn:
            torch.manual_seed(0)
            model = Net().to(device)
            for p in model.parameters():
                p.grad = torch.randn(p.shape).to(device) * 1e-3
            opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
            return opt.step

        return make(DEVICE), make("cpu")

    return Case("adadelta_step_mnist_net", "optimizer", setup)


def mnist_step_case(batch: int = 64) -> Case:
    """The whole training step of the MNIST example: forward, nll_loss, backward, Adadelta."""

    def setup() -> tuple[Fn, Fn]:
        data = (torch.rand(batch, 1, 28, 28) - 0.1307) / 0.3081
        target = torch.randint(0, 10, (batch,))

        def make(device: str) -> Fn:
            torch.manual_seed(0)
            model = Net().to(device)
            opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
            x, t = data.to(device), target.to(device)

            def step() -> float:
                opt.zero_grad()
                loss = F.nll_loss(model(x), t)
                loss.backward()
                opt.step()
                return loss.item()

            return step

        return make(DEVICE), make("cpu")

    return Case(f"mnist_train_step_b{batch}_adadelta", "step", setup)


CASES: list[Case] = [
    cross_entropy_case(64, 10),
    cross_entropy_case(256, 1000),
    relu_case((64, 32, 26, 26)),
    relu_case((64, 64, 24, 24)),
    maxpool_case((64, 64, 24, 24)),
    dropout_case((64, 64, 12, 12), 0.25),
    dropout_case((64, 128), 0.5),
    adadelta_case(),
    mnist_step_case(),
]


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(__doc__, argv)
    selected = select(CASES, args.only, parser)
    torch.set_num_threads(args.threads)
    for case in selected:
        ours_fn, aten_fn = case.setup()
        rustorch_device.reset_op_stats()
        ours_fn()
        fallback_calls = sum(c["fallback"] for c in rustorch_device.op_stats().values())
        ours_s, aten_s = measure(ours_fn, aten_fn, args.reps, args.min_time)
        ours, aten = statistics.median(ours_s), statistics.median(aten_s)
        row = {
            "case": case.name,
            "group": case.group,
            "threads": args.threads,
            "rustorch_ms": round(ours * 1e3, 4),
            "aten_ms": round(aten * 1e3, 4),
            "ratio": round(ours / aten, 3),
            "fallback_calls_per_call": fallback_calls,
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
