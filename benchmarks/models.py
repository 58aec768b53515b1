"""Whole training steps of real models: rustorch against CPU ATen, measured in the same run.

Cases (ratio = rustorch time / CPU time, interleaved medians; lower is better):
  resnet18_train_step     torchvision resnet18 (10 classes), batch 16, 3x64x64, cross-entropy,
                          SGD momentum 0.9                                   goal <= 0.8
  transformer_train_step  nn.TransformerEncoderLayer(d_model 256, 4 heads, batch_first), seq 128,
                          batch 16, AdamW                                     goal <= 0.6
  lstm_train_step         nn.LSTM(256 -> 256, 2 layers), seq 64, batch 32, a linear head on the
                          last step, cross-entropy, SGD                            goal <= 1.0
Both sides pass foreach=True to the optimizer (PyTorch's stock default is foreach on rustorch
but the per-tensor loop on CPU); `ratio_stock_cpu` compares with CPU's stock default as well.
Each line also reports the fallback calls of one step (goal: 0) and memory: `rustorch_peak_bytes`
is the allocator's peak during a step (parameters, gradients and optimizer state included);
the step's own transient memory (activations, temporaries: peak above the memory held before the
step) is `rustorch_step_peak_bytes` next to `cpu_step_peak_rss_bytes`, measured for CPU in a
fresh child process as peak RSS (VmHWM, reset through /proc/self/clear_refs) minus RSS before
the step (page-granular, and it includes allocator caching, so it is an upper bound).

    python benchmarks/models.py [--only resnet18_train_step] [--threads 2] [--reps 5]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from harness import Fn, emit, measure, parse_args, ratio_row, select

import rustorch_device

DEVICE = "rustorch"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    goal: float
    # make(device, foreach) -> one training step
    make: Callable[[str, bool | None], Fn]


def resnet18_step(device: str, foreach: bool | None) -> Fn:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)
    x = torch.randn(16, 3, 64, 64).to(device)
    y = torch.randint(0, 10, (16,)).to(device)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def transformer_step(device: str, foreach: bool | None) -> Fn:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, batch_first=True).to(device)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4, foreach=foreach)
    x = torch.randn(16, 128, 256).to(device)

    def step() -> None:
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()

    return step


def lstm_step(device: str, foreach: bool | None) -> Fn:
    torch.manual_seed(0)
    lstm = nn.LSTM(256, 256, num_layers=2).to(device)
    head = nn.Linear(256, 10).to(device)
    params = [*lstm.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, foreach=foreach)
    x = torch.randn(64, 32, 256).to(device)  # (seq, batch, features)
    y = torch.randint(0, 10, (32,)).to(device)

    def step() -> None:
        opt.zero_grad()
        out, _ = lstm(x)
        F.cross_entropy(head(out[-1]), y).backward()
        opt.step()

    return step


CASES = [
    Case("resnet18_train_step", "model", 0.8, resnet18_step),
    Case("transformer_train_step", "model", 0.6, transformer_step),
    Case("lstm_train_step", "model", 1.0, lstm_step),
]

CPU_PEAK = """
import sys, torch
sys.path.insert(0, {bench!r})
import models
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
torch.set_num_threads({threads})
step = getattr(models, {fn!r})("cpu", True)
step()  # gradients and optimizer state exist from now on, as on the device side
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM (peak RSS) to the current RSS
before = status("VmRSS:")
step()
print(max(0, status("VmHWM:") - before))
"""


def cpu_step_peak_bytes(case: Case, threads: int) -> int | None:
    """Peak RSS of one CPU step above the RSS before it, in a fresh process after a warm-up step."""
    code = CPU_PEAK.format(bench=str(Path(__file__).parent), threads=threads, fn=case.make.__name__)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        print(res.stderr[-2000:], file=sys.stderr)
        return None
    return int(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(__doc__, argv)
    selected = select(CASES, args.only, parser)
    torch.set_num_threads(args.threads)
    for case in selected:
        ours = case.make(DEVICE, True)
        cpu = case.make("cpu", True)
        cpu_stock = case.make("cpu", None)
        ours()  # warm-up: allocator cache, lazy state (momentum buffers, Adam moments)
        torch.accelerator.reset_peak_memory_stats()
        held = torch.accelerator.memory_allocated()
        rustorch_device.reset_op_stats()
        ours()
        stats = rustorch_device.op_stats()
        fallback = {op: s["fallback"] for op, s in stats.items() if s["fallback"]}
        peak = torch.accelerator.max_memory_allocated()
        ours_s, cpu_s = measure(ours, cpu, args.reps, args.min_time)
        _, stock_s = measure(ours, cpu_stock, max(3, args.reps // 2), args.min_time)
        row = ratio_row(
            case.name,
            case.group,
            ours_s,
            cpu_s,
            goal=case.goal,
            ratio_stock_cpu=round(statistics.median(ours_s) / statistics.median(stock_s), 3),
            fallback_calls_per_step=sum(fallback.values()),
            fallback_ops=fallback,
            rustorch_peak_bytes=peak,
            rustorch_step_peak_bytes=peak - held,
            cpu_step_peak_rss_bytes=cpu_step_peak_bytes(case, args.threads),
        )
        emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
