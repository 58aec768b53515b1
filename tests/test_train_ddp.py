"""The trainer under DDP (2 CPU ranks, gloo on loopback): rank 0 alone logs and checkpoints
(with both ranks' RNG states), evaluation is all-reduced, the ranks stay in sync."""

from __future__ import annotations

import json
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, runs: str, out: str) -> None:
    import rustorch_tools
    from rustorch_tools.train import TensorLoader, Trainer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same initial model on every rank
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(128, 8, generator=g), torch.randint(0, 4, (128,), generator=g)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = rustorch_tools.start_run(runs, "ddp", run_id="ddp-run", rank=0) if rank == 0 else None
        trainer = Trainer(model, opt, TensorLoader(x, y, 16, seed=3, rank=rank, world=world), "cpu",
                          eval_loader=TensorLoader(x, y, 32, shuffle=False, drop_last=False, rank=rank, world=world),
                          epochs=1, checkpoint_every=2, run=run)
        result = trainer.fit()
        if run is not None:
            run.finish()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        with open(f"{out}.{rank}", "w") as f:
            json.dump({"metrics": result.metrics, "params": flat.tolist(), "steps": result.step}, f)
    finally:
        dist.destroy_process_group()


def test_two_ranks_one_logger_synced_and_all_reduced(tmp_path):
    from rustorch_tools.checkpoint import load_checkpoint
    from rustorch_tools.store import runs as store_runs

    runs, out = tmp_path / "runs", str(tmp_path / "out")
    mp.start_processes(_worker, args=(2, _free_port(), str(runs), out), nprocs=2, start_method="spawn")
    r0, r1 = (json.loads(open(f"{out}.{r}").read()) for r in range(2))
    assert r0["steps"] == r1["steps"] == 4  # 64 samples per rank, batches of 16
    assert r0["params"] == r1["params"]  # DDP kept the ranks in sync
    assert r0["metrics"] == r1["metrics"] and r0["metrics"]["eval/accuracy"] >= 0  # all-reduced
    run_dir = runs / "ddp-run"
    rows = [r for r in store_runs.iter_metrics(run_dir) if "train/loss" in r]
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and {r.get("rank") for r in rows} == {0}
    ckpt = load_checkpoint(run_dir, restore_rng=False)
    assert len(ckpt.extra["rank_rng"]) == 2 and ckpt.extra["trainer"]["epoch"] == 1
