"""Trains the MNIST CNN with DistributedDataParallel on rustorch: stock DDP code, backend rgloo.

    torchrun --nproc-per-node 2 examples/ddp_mnist.py --data ../shared/data --epochs 1
    torchrun --nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \
        examples/ddp_mnist.py ...                  # multi-node: the same script on every node
    python examples/ddp_mnist.py ...               # one process (a world of one rank)

Each rank trains on its DistributedSampler shard with `--batch-size` samples per step (global
batch = batch size x world size). Rank 0 owns the run in `--runs` (rustorch_tools): it logs the
global mean loss (and, with --log-all-ranks, every rank appends its own rows), and saves
checkpoints that hold every rank's RNG state; `--resume RUN_ID` continues that run from its
latest checkpoint, mid-epoch included. `--loss-log FILE` writes one JSON line per step (global
loss, and a digest of the parameters at the end) for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Sampler, Subset
from torch.utils.data.distributed import DistributedSampler
from torchvision import datasets, transforms

import rustorch_tools


class Net(nn.Module):
    """The CNN of the stock PyTorch MNIST example; `dropout=False` makes it deterministic."""

    def __init__(self, dropout: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25 if dropout else 0.0)
        self.dropout2 = nn.Dropout(0.5 if dropout else 0.0)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = torch.flatten(x, 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


class SkipSampler(Sampler[int]):
    """`sampler` without its first `skip` indices: a resumed epoch starts where it stopped."""

    def __init__(self, sampler: DistributedSampler, skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.sampler)[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="MNIST with DistributedDataParallel on rustorch")
    p.add_argument("--data", default=os.environ.get("RUSTORCH_DATA", "../data"),
                   help="folder holding MNIST/raw (torchvision layout)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank and step")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--gamma", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-subset", type=int, default=0, help="use the first N training images")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in all")
    p.add_argument("--no-dropout", action="store_true", help="deterministic model (parity tests)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers per rank")
    p.add_argument("--device", default=None, help="default: the current accelerator (rustorch)")
    p.add_argument("--backend", default="cpu:gloo,rustorch:rgloo")
    p.add_argument("--timeout", type=float, default=300.0, help="collective timeout in seconds")
    p.add_argument("--runs", default="runs", help="rustorch_tools runs folder ('' to disable)")
    p.add_argument("--run-name", default="ddp-mnist")
    p.add_argument("--log-all-ranks", action="store_true", help="every rank logs its own loss")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps (0: epoch ends only)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue this run")
    p.add_argument("--loss-log", default=None, help="JSON lines of the global loss per step")
    p.add_argument("--save-params", default=None, metavar="FILE",
                   help="rank 0 saves the final parameters (torch.save of name -> CPU tensor)")
    return p.parse_args()


def setup(args: argparse.Namespace) -> tuple[int, int, torch.device]:
    # Plain `python ddp_mnist.py` is a world of one rank on this machine.
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    dist.init_process_group(args.backend, timeout=timedelta(seconds=args.timeout))
    device = torch.device(args.device) if args.device else torch.accelerator.current_accelerator()
    if device is None:
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def param_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    states = {"torch_cpu": torch.get_rng_state()}
    if device.type == "rustorch":
        states["rustorch"] = torch.rustorch.get_rng_state()
    return states


def set_rng_states(states: dict[str, torch.Tensor]) -> None:
    # RNG states are CPU byte tensors, whatever map_location the checkpoint was loaded with.
    torch.set_rng_state(states["torch_cpu"].cpu())
    if "rustorch" in states:
        torch.rustorch.set_rng_state(states["rustorch"].cpu())


def open_run(args: argparse.Namespace, rank: int) -> rustorch_tools.Run | None:
    """Rank 0 creates (or reopens) the run; the others join it with --log-all-ranks."""
    if not args.runs:
        return None
    run = None
    if rank == 0:
        config = {k: v for k, v in vars(args).items() if k not in ("resume", "loss_log")}
        config["world_size"] = dist.get_world_size()
        if args.resume:
            run = rustorch_tools.start_run(args.runs, run_id=args.resume, rank=0)
        else:
            run = rustorch_tools.start_run(args.runs, args.run_name, config, seed=args.seed, rank=0)
    box = [run.run_id if run else None]
    dist.broadcast_object_list(box, src=0)
    if rank != 0 and args.log_all_ranks:
        run = rustorch_tools.attach_run(args.runs, box[0], rank=rank)
    return run


def main() -> None:
    args = parse_args()
    rank, world, device = setup(args)
    torch.manual_seed(args.seed)  # the same initial model on every rank (DDP checks it)

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(args.data, train=True, download=False, transform=transform)
    if args.train_subset:
        train_set = Subset(train_set, range(args.train_subset))
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=True)

    model = Net(dropout=not args.no_dropout).to(device)
    ddp = DDP(model)
    optimizer = torch.optim.Adadelta(ddp.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    torch.manual_seed(args.seed + 1000 * (rank + 1))  # dropout masks differ between ranks

    run = open_run(args, rank)
    step, start_epoch, skip = 0, 1, 0
    if args.resume:
        if not args.runs:
            raise SystemExit("--resume needs --runs")
        state = {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                 "map_location": device, "restore_rng": False}
        # Rank 0 picks the checkpoint (the newest intact one) and logs the resume; all load it.
        path = [str(rustorch_tools.resume(run, **state).path) if rank == 0 else None]
        dist.broadcast_object_list(path, src=0)
        ckpt = rustorch_tools.load_checkpoint(path[0], **state)
        set_rng_states(ckpt.extra["rank_rng"][rank])
        step, start_epoch, skip = ckpt.step, ckpt.epoch, ckpt.extra["batches_done"]

    loss_log = open(args.loss_log, "a") if args.loss_log and rank == 0 else None  # noqa: SIM115
    steps_per_epoch = len(sampler) // args.batch_size

    def checkpoint(epoch: int, batches_done: int) -> None:
        states = [None] * world if rank == 0 else None
        dist.gather_object(rng_states(device), states, dst=0)
        if rank == 0 and run is not None:
            run.save_checkpoint(model=model, optimizer=optimizer, scheduler=scheduler, step=step,
                                epoch=epoch, extra={"rank_rng": states, "batches_done": batches_done})

    done = False
    for epoch in range(start_epoch, args.epochs + 1):
        sampler.set_epoch(epoch)
        epoch_sampler = SkipSampler(sampler, skip * args.batch_size) if skip else sampler
        loader = DataLoader(train_set, batch_size=args.batch_size, sampler=epoch_sampler,
                            num_workers=args.workers, pin_memory=device.type != "cpu",
                            drop_last=True)
        ddp.train()
        batches_done = skip
        t0 = time.perf_counter()
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(ddp(data), target)
            loss.backward()
            optimizer.step()
            step += 1
            batches_done += 1
            global_loss = loss.detach().clone()
            dist.all_reduce(global_loss, op=dist.ReduceOp.AVG)
            if run is not None and (rank == 0 or args.log_all_ranks):
                metrics = {"train/loss": global_loss.item(), "epoch": epoch}
                if args.log_all_ranks:
                    metrics["train/rank_loss"] = loss.item()
                run.log_metrics(metrics, step=step)
            if loss_log is not None:
                loss_log.write(json.dumps({"step": step, "loss": global_loss.item()}) + "\n")
            if rank == 0 and step % 10 == 0:
                print(f"epoch {epoch} step {step} [{batches_done}/{steps_per_epoch}] "
                      f"loss {global_loss.item():.6f} "
                      f"({(time.perf_counter() - t0) / max(1, batches_done - skip):.3f} s/step)",
                      flush=True)
            if args.checkpoint_every and step % args.checkpoint_every == 0:
                checkpoint(epoch, batches_done)
            if args.max_steps and step >= args.max_steps:
                done = True
                break
        skip = 0
        if done:
            break
        scheduler.step()
        checkpoint(epoch + 1, 0)

    digests = [None] * world
    dist.all_gather_object(digests, param_digest(model))
    if rank == 0:
        in_sync = len(set(digests)) == 1
        print(f"parameters identical on all {world} ranks: {in_sync}", flush=True)
        if loss_log is not None:
            loss_log.write(json.dumps({"digests": digests}) + "\n")
            loss_log.close()
        if not in_sync:
            raise SystemExit(f"parameters diverged between ranks: {digests}")
        if args.save_params:
            params = {n: p.detach().cpu() for n, p in model.named_parameters()}
            torch.save(params, args.save_params)
    if run is not None:
        run.finish()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
