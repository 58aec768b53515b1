"""rustorch tensors across processes (issue 11, item 6): DataLoader workers returning device
tensors, share_memory_() + fork (Hogwild), spawn arguments and Queue results, both sharing
strategies. Every run is bounded (DataLoader timeout, Queue/join timeouts, subprocess timeout):
a regression shows as a failure, never as a hung test run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from device_helpers import run_python

SCRIPT = r'''
import json, sys
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, Dataset

D = "rustorch"
TIMEOUT = 60


class Squares(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.full((3,), float(i * i), device=D), i


def hogwild_rows(param, row, steps):
    # Each worker owns one row: exact totals prove the writes reach the shared parameter.
    opt = torch.optim.SGD([param], lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        param.grad = torch.zeros_like(param)
        param.grad[row] = 1.0
        opt.step()


def train(model, seed):
    torch.manual_seed(seed)
    x = torch.randn(64, 4, device=D)
    y = x.sum(1, keepdim=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def produce(q, done, scale):
    t = torch.arange(4.0, device=D) * scale
    q.put((t, t[1:3]))  # a view travels with its storage
    done.wait(TIMEOUT)


def main():
    out = {}
    strategy = sys.argv[1]
    mp.set_sharing_strategy(strategy)
    loader = DataLoader(Squares(), batch_size=2, num_workers=2, timeout=TIMEOUT)
    batches = list(loader)
    out["loader_devices"] = sorted({b[0].device.type for b in batches})
    out["loader_values"] = torch.cat([b[0][:, 0] for b in batches]).cpu().tolist()

    ctx = mp.get_context("fork")
    param = torch.zeros(2, 3, device=D).share_memory_()
    out["is_shared"] = param.is_shared()
    procs = [ctx.Process(target=hogwild_rows, args=(param, r, 4)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    out["hogwild_exit"] = [p.exitcode for p in procs]
    out["hogwild_rows"] = param.cpu().tolist()

    torch.manual_seed(0)
    model = nn.Linear(4, 1).to(D)
    model.share_memory()
    x = torch.randn(64, 4, device=D)
    loss0 = nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).item()
    procs = [ctx.Process(target=train, args=(model, s)) for s in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    loss1 = nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).item()
    out["train_exit"] = [p.exitcode for p in procs]
    out["train_loss_drop"] = loss1 < 0.5 * loss0

    sctx = mp.get_context("spawn")
    q, done = sctx.Queue(), sctx.Event()
    p = sctx.Process(target=produce, args=(q, done, 3.0))
    p.start()
    t, view = q.get(timeout=TIMEOUT)
    done.set()
    p.join(TIMEOUT)
    out["spawn_exit"] = p.exitcode
    out["queue_result"] = [t.device.type, t.cpu().tolist(), view.cpu().tolist()]
    view.mul_(-1)  # the view still aliases its base after the trip
    out["queue_view_aliases"] = t.cpu().tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize(
    "strategy", ["file_descriptor", pytest.param("file_system", marks=pytest.mark.slow)]
)
def test_device_tensors_cross_processes(tmp_path: Path, strategy: str):
    script = tmp_path / "mp_script.py"
    script.write_text(SCRIPT)
    code = f"import runpy, sys; sys.argv = ['x', {strategy!r}]; " \
           f"runpy.run_path({str(script)!r}, run_name='__main__')"
    res = json.loads(run_python(code, timeout=240).strip().splitlines()[-1])
    assert res["loader_devices"] == ["rustorch"]
    assert res["loader_values"] == [float(i * i) for i in range(8)]
    assert res["is_shared"] is True
    assert res["hogwild_exit"] == [0, 0] and res["hogwild_rows"] == [[-2.0] * 3, [-2.0] * 3]
    assert res["train_exit"] == [0, 0] and res["train_loss_drop"]
    assert res["spawn_exit"] == 0
    assert res["queue_result"] == ["rustorch", [0.0, 3.0, 6.0, 9.0], [3.0, 6.0]]
    assert res["queue_view_aliases"] == [0.0, -3.0, -6.0, 9.0]


def test_cpu_sharing_unchanged():
    """CPU storages keep PyTorch's own sharing paths."""
    import torch

    import rustorch_device  # noqa: F401

    assert torch.zeros(3).share_memory_().is_shared()
    assert not torch.zeros(2).is_shared()
    assert not torch.zeros(2, device="rustorch").is_shared()
