"""Training-path benchmarks: rustorch against CPU ATen, measured in the same run.

One JSON line per case. Both sides run at a fixed thread count (2 by default), interleaved
(rustorch, ATen, rustorch, ...) after a warm-up; ratio = median rustorch time / median ATen time
(goal: <= 1.0; the MNIST step: <= 0.6). Cases: cross-entropy forward+backward, relu,
max_pool2d, dropout and an Adadelta step at MNIST shapes, conv2d forward+backward at ResNet
shapes (3x3 64->64 on 56x56, 1x1, stride 2, depthwise), batch_norm forward+backward, and the
whole MNIST Net training step (batch 64, Adadelta). Optimizers run with foreach=True on both
sides (CPU's stock default is the per-tensor loop).

    python benchmarks/kernels_training.py                  # every case
    python benchmarks/kernels_training.py --only loss,step # groups or case names
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from harness import Fn, emit, measure, parse_args, ratio_row, select

import rustorch_device

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from mnist_net import Net  # noqa: E402

DEVICE = "rustorch"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    # Builds inputs on both sides; returns (rustorch callable, ATen callable).
    setup: Callable[[], tuple[Fn, Fn]]
    goal: float = 1.0


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


def adadelta_case() -> Case:
    """One Adadelta step (foreach) over the MNIST Net's parameters, gradients already set."""

    def setup() -> tuple[Fn, Fn]:
        def make(device: str) -> Fn:
            torch.manual_seed(0)
            model = Net().to(device)
            for p in model.parameters():
                p.grad = torch.randn(p.shape).to(device) * 1e-3
            opt = torch.optim.Adadelta(model.parameters(), lr=1.0, foreach=True)
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
            opt = torch.optim.Adadelta(model.parameters(), lr=1.0, foreach=True)
            x, t = data.to(device), target.to(device)

            def step() -> float:
                opt.zero_grad()
                loss = F.nll_loss(model(x), t)
                loss.backward()
                opt.step()
                return loss.item()

            return step

        return make(DEVICE), make("cpu")

    return Case(f"mnist_train_step_b{batch}_adadelta", "step", setup, goal=0.6)


def conv_case(name: str, n: int, cin: int, cout: int, side: int, k: int, stride: int,
              groups: int = 1) -> Case:
    """conv2d forward + backward (input and weight gradients, bias) at one layer's shape."""

    def setup() -> tuple[Fn, Fn]:
        x_dev, x_cpu = _pair(n, cin, side, side, requires_grad=True)
        w_dev, w_cpu = _pair(cout, cin // groups, k, k, requires_grad=True)
        b_dev, b_cpu = _pair(cout, requires_grad=True)

        def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> Fn:
            return lambda: F.conv2d(x, w, b, stride=stride, padding=k // 2, groups=groups).sum().backward()

        return run(x_dev, w_dev, b_dev), run(x_cpu, w_cpu, b_cpu)

    return Case(f"conv2d_{name}_fwd_bwd", "conv", setup)


def batch_norm_case(shape: tuple[int, ...], channels_last: bool = False) -> Case:
    """BatchNorm2d in training mode (running statistics updated), forward + backward."""

    def setup() -> tuple[Fn, Fn]:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x_dev, x_cpu = (t.to(memory_format=fmt).detach().requires_grad_() for t in _pair(*shape))

        def run(x: torch.Tensor) -> Fn:
            bn = nn.BatchNorm2d(shape[1]).to(x.device)
            return lambda: bn(x).sum().backward()

        return run(x_dev), run(x_cpu)

    suffix = "_channels_last" if channels_last else ""
    return Case("batch_norm_fwd_bwd_" + "x".join(map(str, shape)) + suffix, "norm", setup)


CASES: list[Case] = [
    cross_entropy_case(64, 10),
    cross_entropy_case(256, 1000),
    relu_case((64, 32, 26, 26)),
    relu_case((64, 64, 24, 24)),
    maxpool_case((64, 64, 24, 24)),
    dropout_case((64, 64, 12, 12), 0.25),
    dropout_case((64, 128), 0.5),
    adadelta_case(),
    conv_case("3x3_64to64_56x56", 8, 64, 64, 56, 3, 1),
    conv_case("1x1_64to256_56x56", 8, 64, 256, 56, 1, 1),
    conv_case("3x3_64to128_stride2_56x56", 8, 64, 128, 56, 3, 2),
    conv_case("3x3_depthwise_64_56x56", 8, 64, 64, 56, 3, 1, groups=64),
    batch_norm_case((16, 64, 32, 32)),
    batch_norm_case((16, 64, 32, 32), channels_last=True),
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
        emit(ratio_row(case.name, case.group, ours_s, aten_s, goal=case.goal,
                       fallback_calls_per_call=fallback_calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
