"""nn.SyncBatchNorm on rustorch across two processes (rgloo) against BatchNorm on CPU.

SyncBatchNorm accepts the device and, with two or more ranks, calls aten::batch_norm_stats,
batch_norm_gather_stats_with_counts, batch_norm_elemt, batch_norm_backward_reduce and
batch_norm_backward_elemt, which PyTorch implements only for CUDA; rustorch serves them
(cpp_ext/aten/native/sync_batch_norm.cpp). Two ranks each normalize half of a batch; together
they must equal BatchNorm on the whole batch on CPU: outputs, input gradients, the sum of the
ranks' parameter gradients and the running statistics.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from device_helpers import REPO

import rustorch_device  # noqa: F401

CHILD = r"""
import copy, sys
import rustorch_device  # noqa: F401
import torch
import torch.distributed as dist
from torch import nn

rank, folder = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("cpu:gloo,rustorch:rgloo", init_method=f"file://{folder}/store",
                        rank=rank, world_size=2)
torch.manual_seed(0)
x = torch.randn(6, 3, 4, 5, dtype=torch.double)
w = torch.randn(6, 3, 4, 5, dtype=torch.double)
bn = nn.SyncBatchNorm(3, momentum=0.2).double()
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)
# Rank 0 gets 2 samples, rank 1 gets 4: unequal counts exercise the count-weighted combine.
part = slice(0, 2) if rank == 0 else slice(2, 6)
m = copy.deepcopy(bn).to("rustorch")
xs = x[part].to("rustorch").requires_grad_()
y = m(xs)
(y * w[part].to("rustorch")).sum().backward()
torch.save({"y": y.detach().cpu(), "gx": xs.grad.cpu(), "gw": m.weight.grad.cpu(),
            "gb": m.bias.grad.cpu(), "rm": m.running_mean.cpu(), "rv": m.running_var.cpu(),
            "stats": rustorch_device.op_stats()}, f"{folder}/rank{rank}.pt")
dist.destroy_process_group()
"""


def test_sync_batch_norm_two_ranks_matches_cpu_batch_norm(tmp_path: Path):
    env_path = {"PYTHONPATH": str(REPO)}


    env = {**os.environ, **env_path}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(r), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    for p in procs:
        try:
            _, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("SyncBatchNorm ranks hung") from None
        assert p.returncode == 0, err[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))

    torch.manual_seed(0)
    x = torch.randn(6, 3, 4, 5, dtype=torch.double).requires_grad_()
    w = torch.randn(6, 3, 4, 5, dtype=torch.double)
    ref = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    y = ref(x)
    (y * w).sum().backward()

    tol = dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(torch.cat([r0["y"], r1["y"]]), y.detach(), **tol)
    torch.testing.assert_close(torch.cat([r0["gx"], r1["gx"]]), x.grad, **tol)
    torch.testing.assert_close(r0["gw"] + r1["gw"], ref.weight.grad, **tol)
    torch.testing.assert_close(r0["gb"] + r1["gb"], ref.bias.grad, **tol)
    for r in (r0, r1):
        torch.testing.assert_close(r["rm"], ref.running_mean, **tol)
        torch.testing.assert_close(r["rv"], ref.running_var, **tol)
        for op in ("batch_norm_stats", "batch_norm_gather_stats_with_counts",
                   "batch_norm_elemt", "batch_norm_backward_reduce",
                   "batch_norm_backward_elemt"):
            assert r["stats"].get(f"aten::{op}", {}).get("native", 0) >= 1, op
