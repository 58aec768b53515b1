"""Collectives on rustorch (rgloo) against CPU gloo in the same run, and DDP step scaling.

    python benchmarks/allreduce.py [--only allreduce,all_gather,reduce_scatter,ddp]
                                   [--sizes-kb 4 1024 10240 102400] [--ddp-steps 10]

Prints one JSON line per case; lower ratio is better. Collectives: 2 ranks on 127.0.0.1 in one
process group "cpu:gloo,rustorch:rgloo"; each repetition times the rustorch call, then the same
call on CPU tensors through plain gloo (interleaved, so machine noise hits both alike, and in
alternating order), each after a barrier; `ratio` = median rustorch time / median CPU gloo time (goal <= 1.05), `ratio_min` the
same for the best times. Small sizes time several calls per sample. all_reduce runs at every
size; all_gather (all_gather_into_tensor) and reduce_scatter (reduce_scatter_tensor) at 10 MB of
input per rank. DDP: the MNIST CNN of examples/ddp_mnist.py on synthetic batches of 64 per rank;
`ratio_vs_1_rank` = 2-rank step time / 1-rank step time (same per-rank work plus the gradient
all_reduce). Every line carries the load average and the thread count: numbers from a busy
machine are preliminary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from harness import emit

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.05
KB = 1024


def _collective_cases(sizes_kb: list[float], only: set[str]) -> list[tuple[str, int]]:
    cases = [("allreduce", int(kb * KB)) for kb in sizes_kb] if "allreduce" in only else []
    cases += [(op, 10 * KB * KB) for op in ("all_gather", "reduce_scatter") if op in only]
    return cases


def _collective_worker(sizes_kb: list[float], only: set[str]) -> None:
    import torch
    import torch.distributed as dist

    import rustorch_device.distributed  # noqa: F401  (registers rgloo without the entry point)

    dist.init_process_group("cpu:gloo,rustorch:rgloo", timeout=timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    for op, nbytes in _collective_cases(sizes_kb, only):
        n = max(world, nbytes // 4 // world * world)
        g = torch.Generator().manual_seed(rank)
        src = torch.randint(-8, 8, (n,), generator=g).float()  # exact sums: results comparable
        tensors: dict[str, dict[str, torch.Tensor]] = {}
        for dev in ("rustorch", "cpu"):
            t = {"in": src.to(dev)}
            if op == "all_gather":
                t["out"] = torch.empty(n * world, device=dev)
            elif op == "reduce_scatter":
                t["out"] = torch.empty(n // world, device=dev)
            tensors[dev] = t
        calls: dict[str, Callable[[], object]] = {}
        for dev, t in tensors.items():
            if op == "allreduce":
                calls[dev] = lambda t=t: dist.all_reduce(t["in"])
            elif op == "all_gather":
                calls[dev] = lambda t=t: dist.all_gather_into_tensor(t["out"], t["in"])
            else:
                calls[dev] = lambda t=t: dist.reduce_scatter_tensor(t["out"], t["in"])
        # The same counts on every rank (they must issue the same collectives).
        inner = max(1, min(50, (256 * KB) // max(nbytes, 1)))
        reps = max(10, min(60, int(300 * KB * KB / max(nbytes, 1))))
        times: dict[str, list[float]] = {"rustorch": [], "cpu": []}
        for i in range(reps + 2):  # two warm-up rounds
            # Alternate which side goes first, so that neither always follows the barrier.
            for dev in ("rustorch", "cpu") if i % 2 == 0 else ("cpu", "rustorch"):
                dist.barrier()
                t0 = time.perf_counter()
                for _ in range(inner):
                    calls[dev]()
                dt = (time.perf_counter() - t0) / inner
                if i >= 2:
                    times[dev].append(dt)
        key = "in" if op == "allreduce" else "out"
        same = bool(torch.equal(tensors["rustorch"][key].cpu(), tensors["cpu"][key]))
        if rank == 0:
            r, c = statistics.median(times["rustorch"]), statistics.median(times["cpu"])
            r_min, c_min = min(times["rustorch"]), min(times["cpu"])
            emit({
                "case": f"{op}_{nbytes // KB}KB_vs_cpu_gloo", "group": "collectives",
                "bench": op, "size_kb": round(nbytes / KB, 1), "ranks": world, "reps": reps,
                "calls_per_sample": inner, "rustorch_ms": round(r * 1e3, 4),
                "cpu_gloo_ms": round(c * 1e3, 4), "ratio": round(r / c, 3), "goal": GOAL,
                "meets_goal": r / c <= GOAL, "rustorch_min_ms": round(r_min * 1e3, 4),
                "cpu_gloo_min_ms": round(c_min * 1e3, 4), "ratio_min": round(r_min / c_min, 3),
                "results_equal": same,
            })
    dist.destroy_process_group()


def _ddp_worker(steps: int) -> None:
    import torch
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    import rustorch_device.distributed  # noqa: F401

    sys.path.insert(0, str(REPO / "examples"))
    import torch.distributed as dist
    from ddp_mnist import Net

    dist.init_process_group("cpu:gloo,rustorch:rgloo", timeout=timedelta(seconds=120))
    torch.manual_seed(0)
    device = torch.device("rustorch")
    model = DDP(Net().to(device))
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    data = torch.randn(64, 1, 28, 28, device=device)
    target = torch.randint(0, 10, (64,), device=device)
    times = []
    for i in range(steps + 2):
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        F.nll_loss(model(data), target).backward()
        opt.step()
        torch.rustorch.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    if dist.get_rank() == 0:
        print(json.dumps({"ddp_step_ms": statistics.median(times) * 1e3,
                          "threads": torch.get_num_threads()}), flush=True)
    dist.destroy_process_group()


def _launch(args: list[str], nproc: int, timeout: float) -> list[str]:
    sys.path.insert(0, str(REPO / "tests"))
    from support.local_launch import launch

    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    results = launch([__file__, *args], nproc, timeout=timeout, env=env, cwd=REPO)
    for r in results:
        if r.returncode != 0:
            raise SystemExit(f"rank {r.rank} failed (rc={r.returncode}):\n{r.stderr[-4000:]}")
    return [line for line in results[0].stdout.splitlines() if line.startswith("{")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="allreduce,all_gather,reduce_scatter,ddp",
                   help="comma-separated cases: allreduce, all_gather, reduce_scatter, ddp")
    p.add_argument("--sizes-kb", type=float, nargs="+", default=[4, 1024, 10240, 102400],
                   help="all_reduce sizes in KiB")
    p.add_argument("--ddp-steps", type=int, default=10)
    p.add_argument("--worker", choices=["collectives", "ddp"], help=argparse.SUPPRESS)
    args = p.parse_args()
    only = {w for w in args.only.split(",") if w}
    unknown = only - {"allreduce", "all_gather", "reduce_scatter", "ddp"}
    if unknown:
        p.error(f"unknown case(s) in --only: {sorted(unknown)}")
    if args.worker == "collectives":
        return _collective_worker(args.sizes_kb, only)
    if args.worker == "ddp":
        return _ddp_worker(args.ddp_steps)

    if only - {"ddp"}:
        sizes = [str(s) for s in args.sizes_kb]
        cmd = ["--worker", "collectives", "--only", ",".join(sorted(only)), "--sizes-kb", *sizes]
        for line in _launch(cmd, 2, 600):
            print(line, flush=True)
    if "ddp" in only:
        step_ms: dict[int, float] = {}
        for nproc in (1, 2):
            (line,) = _launch(["--worker", "ddp", "--ddp-steps", str(args.ddp_steps)], nproc, 600)
            row = json.loads(line)
            step_ms[nproc] = row["ddp_step_ms"]
            emit({
                "case": f"ddp_step_{nproc}_ranks", "group": "collectives", "bench": "ddp_step",
                "model": "mnist_cnn", "batch_per_rank": 64, "ranks": nproc,
                "step_ms": round(step_ms[nproc], 2),
                "ratio_vs_1_rank": round(step_ms[nproc] / step_ms[1], 3), "threads": row["threads"],
            })


if __name__ == "__main__":
    main()
