"""rustorch demo: the pytorch/examples MNIST CNN on the rustorch device, compiled with
`torch.compile(model, backend="rust_backend")`, logged into runs/ with rustorch_tools and
checkpointed every epoch.

Data: --data DIR (only that folder), else $RUSTORCH_DATA, ./data, ../shared/data (full MNIST in
torchvision's layout, MNIST/raw/); else the MNIST subset shipped in rustorch_tools (20k train / 2k
test). MNIST_ALLOW_DOWNLOAD=1 (or CLOUD_MNIST_OK=1, CODEX_CLOUD=1) downloads the full set when
none is found. Exit codes: 0 done, 2 no data / bad arguments, 1 training failed.

    python examples/mnist_rustorch_demo.py [--epochs 2] [--data DIR] [--runs-dir runs]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import mnist_data as datasets
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import StepLR
from tqdm import tqdm

import rustorch_tools
from rustorch_tools.repro.record import record_entry_point


class Net(nn.Module):
    """The pytorch/examples MNIST CNN: two 3x3 convs, max-pool, two linear layers, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(self.dropout1(F.max_pool2d(x, 2)), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="MNIST on rustorch with torch.compile(backend='rust_backend')")
    p.add_argument("--data", type=Path, default=None, help="folder holding MNIST/raw (only it is searched)")
    p.add_argument("--subset", action="store_true", help="train on the shipped subset even if full MNIST is found")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--gamma", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--name", default="mnist-demo", help="run name")
    p.add_argument("--device", default=None, help="default: the current accelerator (rustorch)")
    p.add_argument("--no-compile", action="store_true", help="run eagerly (no torch.compile)")
    p.add_argument("--max-steps", type=int, default=None, help="stop each epoch after N steps (smoke runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "test_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be >= 1")
    return args


def load_data(args: argparse.Namespace) -> tuple[datasets.MnistSplit, datasets.MnistSplit]:
    root = None if args.subset else datasets.resolve(args.data)
    if root is None:
        return datasets.load_shipped("train"), datasets.load_shipped("test")
    return datasets.load_full(root, "train"), datasets.load_full(root, "test")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the accelerator's generator too


def pick_device(name: str | None) -> torch.device:
    if name is not None:
        return torch.device(name)
    if not torch.accelerator.is_available():
        raise RuntimeError("no accelerator: is rustorch_device built? (make build)")
    return torch.accelerator.current_accelerator()


def compile_fn(fn):
    """torch.compile with the backend looked up by name (the `torch_dynamo_backends` entry point).

    An install made before the entry point existed lacks it; register it by hand then, and say
    how to fix the install, rather than fail.
    """
    import torch._dynamo
    from torch._dynamo.exc import InvalidBackend

    try:
        torch._dynamo.lookup_backend("rust_backend")
    except InvalidBackend:
        from rustorch_device.backend import rust_backend

        print("warning: the rust_backend entry point is not installed (re-run `pip install -e .`); "
              "registering it by hand", file=sys.stderr)
        torch._dynamo.register_backend(rust_backend, name="rust_backend")
    return torch.compile(fn, backend="rust_backend", dynamic=False)


def train_epoch(model, step_fn, x, y, args, device, epoch, run, first_step) -> tuple[int, float]:
    """One epoch over shuffled full batches (a ragged last batch would force a recompile)."""
    model.train()
    order = torch.randperm(len(y))
    n_batches = len(y) // args.batch_size
    if args.max_steps is not None:
        n_batches = min(n_batches, args.max_steps)
    bar = tqdm(range(n_batches), desc=f"epoch {epoch}", unit="batch",
               disable=args.no_progress, file=sys.stdout, dynamic_ncols=True)
    step, loss_value, t0 = first_step, float("nan"), time.perf_counter()
    for i in bar:
        idx = order[i * args.batch_size:(i + 1) * args.batch_size]
        data, target = x[idx].to(device), y[idx].to(device)
        loss_value = step_fn(data, target)
        run.log_metrics({"loss": loss_value}, step=step)
        step += 1
        rate = (i + 1) * args.batch_size / (time.perf_counter() - t0)
        bar.set_postfix(loss=f"{loss_value:.4f}", samples_s=f"{rate:.0f}")
    bar.close()
    return step, loss_value


@torch.no_grad()
def evaluate(model, x, y, batch_size, device) -> tuple[float, float]:
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        data, target = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model(data)
        total_loss += F.nll_loss(out, target, reduction="sum").item()
        correct += int(out.argmax(dim=1).eq(target).sum().item())
    return total_loss / len(y), correct / len(y)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train_set, test_set = load_data(args)
    except datasets.MnistNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (datasets.MnistFormatError, FileNotFoundError) as e:
        print(f"error: bad MNIST data: {e}", file=sys.stderr)
        return 2
    print(f"data: {train_set.source} ({len(train_set)} train / {len(test_set)} test)")

    seed_everything(args.seed)
    try:
        device = pick_device(args.device)
    except RuntimeError as e:  # no accelerator, or a bad --device string
        print(f"error: {e}", file=sys.stderr)
        return 2
    x_train, y_train = train_set.normalized(), train_set.labels
    x_test, y_test = test_set.normalized(), test_set.labels

    model = Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    net = model if args.no_compile else compile_fn(model)

    def optimizer_step() -> None:
        optimizer.step()

    # Compiled, Adadelta's foreach updates become one fused loop (measured ~1 ms against ~50 ms
    # of separate ops per step); StepLR's new lr recompiles it once per epoch.
    opt_step = optimizer_step if args.no_compile else compile_fn(optimizer_step)

    def step_fn(data: torch.Tensor, target: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = F.nll_loss(net(data), target)
        loss.backward()
        opt_step()
        return loss.item()

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(device=str(device), data=train_set.source, compile_backend=None if args.no_compile else "rust_backend")
    with rustorch_tools.start_run(root=str(args.runs_dir), name=args.name, config=config,
                                  seed=args.seed) as run:
        record_entry_point(run, script=__file__, argv=sys.argv[1:] if argv is None else argv,
                           data_files=[*train_set.files, *test_set.files], device=device)
        run.log_params({"model": "pytorch-examples-mnist-cnn", "optimizer": "Adadelta",
                        "train_samples": len(train_set), "test_samples": len(test_set)})
        step, accuracy = 0, 0.0
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            step, last_loss = train_epoch(model, step_fn, x_train, y_train, args, device, epoch, run, step)
            epoch_s = time.perf_counter() - t0
            test_loss, accuracy = evaluate(net, x_test, y_test, args.test_batch_size, device)
            scheduler.step()
            run.log_metrics({"epoch": epoch, "test_loss": test_loss, "test_accuracy": accuracy,
                             "epoch_seconds": epoch_s}, step=step)
            run.save_checkpoint(model=model, optimizer=optimizer, scheduler=scheduler,
                                step=step, epoch=epoch)
            print(f"epoch {epoch}: train loss {last_loss:.4f}, test loss {test_loss:.4f}, "
                  f"test accuracy {100 * accuracy:.2f}% ({epoch_s:.1f} s)")
        run.log_device_telemetry(step)
    print(f"final test accuracy: {100 * accuracy:.2f}%  (run {run.run_id} in {args.runs_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
