"""Checkpoint speed: a 100 MB state_dict saved and loaded by rustorch_tools.checkpoint next to
torch.save / torch.load(weights_only=True) and safetensors' save_file / load_file, same run.

    python benchmarks/bench_checkpoint.py [--mb 100] [--repeat 3]

Ours does more work than the references: it hashes every byte (SHA-256, written into the
file and verified on load) and fsyncs file and directory (crash safety); a safetensors save
followed by an fsync is printed as well to show the cost of durability alone. safetensors
and our loader both map the file lazily, so `load_and_copy_into_model` (the tensors copied
into a model's parameters, as load_state_dict does) is the comparison that touches every
byte. Best of `repeat` rounds; the cases take turns within a round (benchmarks/harness.py). Prints
one JSON line per case; `ratio` = time / safetensors' time (lower is better). Goals (issue 12),
listed by benchmarks/summary.py: save <= 1.0 (at least safetensors' speed, though ours also
hashes and fsyncs), load + verify + copy into the model <= 2.0. Every line carries the load
average and thread count: numbers from a loaded machine are preliminary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import safetensors.torch as st  # noqa: E402
import torch  # noqa: E402

from rustorch_tools import checkpoint  # noqa: E402


def state_dict(mb: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    n = mb * (1 << 20) // 4 // 25
    return {f"layer{i}.weight": torch.randn(n) for i in range(25)}


def race(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time of each case (harness.race: the cases take turns, round-robin)."""
    return {name: min(ts) for name, ts in harness.race(cases, repeat).items()}


def copy_into(dest: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor]) -> None:
    """What load_state_dict does with the loaded tensors: copy them into the model."""
    for key, tensor in dest.items():
        tensor.copy_(loaded[key])


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    sd = state_dict(args.mb)
    nbytes = sum(t.numel() * t.element_size() for t in sd.values())
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-", dir=args.dir) as tmp:
        d = Path(tmp)
        ours_path, st_path, pt_path = d / "ours.safetensors", d / "ref.safetensors", d / "ref.pt"

        def st_save_fsync() -> None:
            st.save_file(sd, st_path)
            fsync_path(st_path)

        save = race({
            "rustorch_tools": lambda: checkpoint.save_checkpoint(ours_path, model=sd, rng=False),
            "safetensors": lambda: st.save_file(sd, st_path),
            "safetensors+fsync": st_save_fsync,
            "torch.save": lambda: torch.save(sd, pt_path),
        }, args.repeat)
        loaded = checkpoint.load_checkpoint(ours_path, restore_rng=False)
        assert all(torch.equal(loaded.model[k], v) for k, v in sd.items())
        del loaded
        dest = {k: torch.empty_like(v) for k, v in sd.items()}
        load = race({
            "rustorch_tools": lambda: checkpoint.load_checkpoint(ours_path, restore_rng=False),
            "safetensors": lambda: st.load_file(st_path),
            "torch.load": lambda: torch.load(pt_path, weights_only=True),
        }, args.repeat)
        load_into = race({
            "rustorch_tools": lambda: copy_into(dest, checkpoint.load_checkpoint(ours_path, restore_rng=False).model),
            "safetensors": lambda: copy_into(dest, st.load_file(st_path)),
            "torch.load": lambda: copy_into(dest, torch.load(pt_path, weights_only=True, mmap=True)),
        }, args.repeat)
    for op, times in (("save", save), ("load", load), ("load_and_copy_into_model", load_into)):
        for name, t in times.items():
            row = {
                "case": f"{op}_{args.mb}MB_state_dict_{name}", "impl": name, "s": round(t, 4),
                "GB_per_s": round(nbytes / t / 1e9, 2),
                "ratio": round(t / times["safetensors"], 2),
            }
            goal = {"save": 1.0, "load_and_copy_into_model": 2.0}.get(op)
            if name == "rustorch_tools" and goal is not None:
                row["goal"] = goal
            harness.emit({**row, "group": "checkpoint"})


if __name__ == "__main__":
    main()
