"""One epoch of the stock-style MNIST training (examples/mnist_accelerator.py) on rustorch and on
CPU in the same run; prints one JSON line with both times and their ratio.

The same model, seed, data and DataLoader settings (the script's accelerator settings: one
persistent worker, pinned memory, shuffling) are used on both devices; only `device` differs.

    python benchmarks/mnist_epoch.py [--max-batches N] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision import datasets as tv_datasets
from torchvision import transforms

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))
import mnist_data as datasets  # noqa: E402  (the examples' MNIST loader)
from harness import emit  # noqa: E402


def load_script():
    spec = importlib.util.spec_from_file_location("mnist_accelerator", REPO / "examples" / "mnist_accelerator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Limited:
    """The first `n` batches of a loader (keeps `dataset` and `len` for the script's logging)."""

    def __init__(self, loader, n: int | None) -> None:
        self.loader, self.dataset = loader, loader.dataset
        self.n = len(loader) if n is None else min(n, len(loader))

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                break
            yield batch


def time_epoch(script, device: torch.device, train_set, max_batches: int | None, seed: int) -> float:
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, num_workers=1,
                                         persistent_workers=True, pin_memory=True, shuffle=True)
    model = script.Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    args = argparse.Namespace(log_interval=10**9, dry_run=False)
    batches = Limited(loader, max_batches)
    next(iter(loader))  # start the persistent worker outside the timed region
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        script.train(args, model, device, batches, optimizer, 1)
    if device.type != "cpu":
        torch.accelerator.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-batches", type=int, default=None, help="default: the full epoch (938)")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not torch.accelerator.is_available():
        print(json.dumps({"bench": "mnist_epoch", "skipped": "no accelerator"}))
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = datasets.find_mnist(args.data)
        source = str(root) if root is not None else "shipped subset"
        if root is None:
            root = datasets.extract_shipped(tmp)
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        train_set = tv_datasets.MNIST(str(root), train=True, transform=transform)
        script = load_script()
        accel = torch.accelerator.current_accelerator()
        times = {d.type: time_epoch(script, d, train_set, args.max_batches, args.seed)
                 for d in (accel, torch.device("cpu"))}
    batches = Limited(torch.utils.data.DataLoader(train_set, batch_size=64), args.max_batches).n
    emit({
        "case": "mnist_epoch", "data": source, "batches": batches,
        f"{accel.type}_s": round(times[accel.type], 3), "cpu_s": round(times["cpu"], 3),
        "ratio_vs_cpu": round(times[accel.type] / times["cpu"], 3),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
