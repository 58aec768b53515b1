"""Checkpoint speed: a 100 MB state_dict saved and loaded by rustorch_tools.checkpoint next to
safetensors' save_file / load_file and torch.save / torch.load(weights_only=True), same run.

    python benchmarks/bench_checkpoint.py [--mb 100] [--repeat 5] [--dir DIR]

Save. Ours is durable: temp file, fsync, rename, fsync of the folder (a crash leaves the old
or the new checkpoint), and it computes SHA-256 and BLAKE3 of every byte. The reference of
the goal, `safetensors+durable`, is safetensors' save_file taking that same durable path (temp
file, fsync, rename, fsync of the folder), so the ratio compares the formats, not durability
against none; plain save_file (no fsync: the bytes may still be in the page cache) is printed
with its own `ratio_vs_plain`.

Load. safetensors and our loader both map the file lazily, so `load_and_copy_into_model` (the
tensors copied into a model's parameters, as load_state_dict does) is the comparison that
touches every byte; ours also verifies one cryptographic digest of the whole file (BLAKE3,
threaded) before anything is copied. `rustorch_tools_run` loads the same file from a run
(checked against the BLAKE3 that manifest.json recorded); `rustorch_tools_full` checks
SHA-256 as well (verify="full").

Each case runs `repeat` rounds in which the cases take turns (benchmarks/harness.py), after
one warm-up round; the median is reported. One JSON line per case; `ratio` = time / the
reference's time (lower is better). Goals (issue 12): save <= 1.0, load + verify + copy into
the model <= 2.0. Every line carries the load average and thread count: numbers from a loaded
machine are preliminary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import safetensors.torch as st  # noqa: E402
import torch  # noqa: E402

import rustorch_tools  # noqa: E402
from rustorch_tools import checkpoint  # noqa: E402
from rustorch_tools.store import atomic  # noqa: E402


def state_dict(mb: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    n = mb * (1 << 20) // 4 // 25
    return {f"layer{i}.weight": torch.randn(n) for i in range(25)}


def race(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median time of each case: one warm-up round, then `repeat` rounds, the cases taking
    turns within a round (harness.race) so that load and page cache hit them alike."""
    harness.race(cases, 1)
    return {name: statistics.median(ts) for name, ts in harness.race(cases, repeat).items()}


def copy_into(dest: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor]) -> None:
    """What load_state_dict does with the loaded tensors: copy them into the model."""
    for key, tensor in dest.items():
        tensor.copy_(loaded[key])


def st_save_durable(sd: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' save_file on the path ours takes: temp file, fsync, rename, fsync dir."""
    tmp = atomic.temp_path_for(path)
    st.save_file(sd, tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    atomic.fsync_dir(path.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    sd = state_dict(args.mb)
    nbytes = sum(t.numel() * t.element_size() for t in sd.values())
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-", dir=args.dir) as tmp:
        d = Path(tmp)
        ours_path, st_path, pt_path = d / "ours.safetensors", d / "ref.safetensors", d / "ref.pt"

        save = race({
            "rustorch_tools": lambda: checkpoint.save_checkpoint(ours_path, model=sd, rng=False),
            "safetensors+durable": lambda: st_save_durable(sd, st_path),
            "safetensors": lambda: st.save_file(sd, st_path),
            "torch.save": lambda: torch.save(sd, pt_path),
        }, args.repeat)
        with rustorch_tools.start_run(d / "runs", name="bench") as run:
            run.save_checkpoint(model=sd, rng=False, step=0)
        loaded = checkpoint.load_checkpoint(ours_path, restore_rng=False, verify="full")
        assert all(torch.equal(loaded.model[k], v) for k, v in sd.items())
        del loaded
        dest = {k: torch.empty_like(v) for k, v in sd.items()}

        def ours(source: object, verify: str = "fast") -> dict[str, torch.Tensor]:
            return checkpoint.load_checkpoint(source, restore_rng=False, verify=verify).model

        load = race({
            "rustorch_tools": lambda: ours(ours_path),
            "safetensors": lambda: st.load_file(st_path),
            "torch.load": lambda: torch.load(pt_path, weights_only=True),
        }, args.repeat)
        load_into = race({
            "rustorch_tools": lambda: copy_into(dest, ours(ours_path)),
            "rustorch_tools_run": lambda: copy_into(dest, ours(run.dir)),
            "rustorch_tools_full": lambda: copy_into(dest, ours(ours_path, "full")),
            "safetensors": lambda: copy_into(dest, st.load_file(st_path)),
            "torch.load": lambda: copy_into(dest, torch.load(pt_path, weights_only=True, mmap=True)),
        }, args.repeat)
    references = {"save": "safetensors+durable", "load": "safetensors", "load_and_copy_into_model": "safetensors"}
    goals = {"save": 1.0, "load_and_copy_into_model": 2.0}
    for op, times in (("save", save), ("load", load), ("load_and_copy_into_model", load_into)):
        reference = references[op]
        for name, t in times.items():
            row = {
                "case": f"{op}_{args.mb}MB_state_dict_{name}", "impl": name, "s": round(t, 4),
                "GB_per_s": round(nbytes / t / 1e9, 2), "reference": reference,
                "ratio": round(t / times[reference], 2),
            }
            if op == "save":
                row["ratio_vs_plain"] = round(t / times["safetensors"], 2)
            if name == "rustorch_tools" and op in goals:
                row["goal"] = goals[op]
            harness.emit({**row, "group": "checkpoint", "repeat": args.repeat, "stat": "median"})


if __name__ == "__main__":
    main()
