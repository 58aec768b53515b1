"""The MNIST training step (forward, backward, Adadelta with foreach=True) timed four ways in one
run: eager on CPU, compiled on CPU with Inductor (`torch.compile`'s default backend), eager on
rustorch, compiled with `backend="rust_backend"` on rustorch (model and optimizer step compiled
on both compiled sides unless --no-compile-optimizer). Prints one JSON line per case (median,
ratio to CPU eager), then the two goal rows (ratio = ours / reference, lower is better):
  compile_rust_backend_mnist_step_vs_cpu_inductor   compiled rustorch / CPU Inductor   <= 0.5
  compile_rust_backend_mnist_step_vs_eager          compiled rustorch / rustorch eager <= 0.8

Compilation (cold ~40 s, warm FX cache a few s) happens in the warm-up and is reported apart.

    python benchmarks/compile_step.py [--steps 30] [--warmup 3] [--no-compile-optimizer]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import emit, ratio_row

REPO = Path(__file__).resolve().parent.parent
BATCH = 64


def load_net() -> type:
    path = REPO / "examples" / "mnist_accelerator.py"
    spec = importlib.util.spec_from_file_location("mnist_accelerator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Net


def make_step(device: str, compiled: bool, compile_optimizer: bool, seed: int):
    torch.manual_seed(seed)
    model = load_net()().to(device)
    # foreach=True on both devices: PyTorch's stock default is foreach on rustorch but the
    # per-tensor loop on CPU.
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, foreach=True)
    # rust_backend on rustorch; Inductor (torch.compile's default) on CPU.
    backend = "rust_backend" if device != "cpu" else "inductor"
    net = torch.compile(model, backend=backend, dynamic=False) if compiled else model

    def opt_step() -> None:
        optimizer.step()

    if compiled and compile_optimizer:
        opt_step = torch.compile(opt_step, backend=backend, dynamic=False)

    def step(data: torch.Tensor, target: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = F.nll_loss(net(data), target)
        loss.backward()
        opt_step()
        return loss.item()  # the host sync every real training loop has

    return step


def bench_all(cases: list[tuple[str, str, bool]], args,
              batches) -> tuple[list[dict], list[list[float]]]:
    """Warm every case up (compiling), then time them round-robin, so that the load of a
    shared machine falls on all cases alike."""
    steps, data, results = [], [], []
    for case, device, compiled in cases:
        step = make_step(device, compiled, args.compile_optimizer, args.seed)
        on_device = [(x.to(device), y.to(device)) for x, y in batches]
        t0 = time.perf_counter()
        for x, y in on_device[: args.warmup]:
            step(x, y)
        steps.append(step)
        data.append(on_device)
        results.append({"case": case, "device": device, "warmup_s": round(time.perf_counter() - t0, 2)})
    times: list[list[float]] = [[] for _ in cases]
    for i in range(args.steps):
        for k in range(len(cases)):
            j = (i + k) % len(cases)  # rotate the order too
            x, y = data[j][i % len(data[j])]
            t = time.perf_counter()
            steps[j](x, y)
            times[j].append(time.perf_counter() - t)
    for r, t in zip(results, times, strict=True):
        r.update(median_ms=round(1e3 * statistics.median(t), 2), min_ms=round(1e3 * min(t), 2))
    return results, times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-compile-optimizer", dest="compile_optimizer", action="store_false",
                   help="compile only the model, run Adadelta eagerly")
    args = p.parse_args(argv)
    if not torch.accelerator.is_available():
        print(json.dumps({"bench": "compile_step", "skipped": "no accelerator"}))
        return 1
    accel = torch.accelerator.current_accelerator().type
    g = torch.Generator().manual_seed(args.seed)
    batches = [(torch.randn(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
               for _ in range(8)]
    cases = [("cpu_eager", "cpu", False), ("cpu_inductor", "cpu", True),
             (f"{accel}_eager", accel, False), (f"{accel}_compiled", accel, True)]
    results, times = bench_all(cases, args, batches)
    reference = results[0]["median_ms"]
    from rustorch_device import backend

    for r in results:
        r.update(bench="compile_step", compile_optimizer=args.compile_optimizer,
                 ratio_vs_cpu_eager=round(r["median_ms"] / reference, 3))
        if r["case"].endswith("compiled"):
            r.update(graphs=backend.STATS.graphs, graph_breaks=backend.graph_breaks(),
                     graph_break_reasons=backend.graph_break_reasons())
        emit(r)
    inductor, eager, compiled = times[1], times[2], times[3]
    emit(ratio_row("compile_rust_backend_mnist_step_vs_cpu_inductor", "compile", compiled,
                   inductor, goal=0.5, reference_case="cpu_inductor"))
    emit(ratio_row("compile_rust_backend_mnist_step_vs_eager", "compile", compiled, eager,
                   goal=0.8, reference_case=f"{accel}_eager"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
