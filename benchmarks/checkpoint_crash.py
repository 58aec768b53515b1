"""SIGKILL at random instants of save_checkpoint, many trials: is the latest loadable
checkpoint always intact?

One process imports torch once and forks a saver per trial (cheap trials); the saver loops
`run.save_checkpoint(...)` with every weight equal to the step, printing each step once the
call returned; the parent kills it after a random delay, then loads the run's latest
checkpoint and checks step >= last completed step and every weight == step.

    python benchmarks/checkpoint_crash.py [--trials 200] [--root DIR] [--keep-dirs]

Prints one JSON line: {"case": "checkpoint_crash", "trials": N, "intact": N, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from harness import emit  # noqa: E402

import rustorch_tools  # noqa: E402
from rustorch_tools import checkpoint  # noqa: E402


def saver(root: Path, keep: int, write_fd: int) -> None:
    """The child: save checkpoints forever, reporting each completed step on `write_fd`."""
    model = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(8)])  # ~2 MB
    with rustorch_tools.start_run(root, run_id="crash") as run:
        step = 0
        while True:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(step)
            run.save_checkpoint(model=model, step=step, extra={"step": step}, keep_last=keep)
            os.write(write_fd, f"{step}\n".encode())
            step += 1


def check(run_dir: Path, last_done: int) -> int:
    ck = checkpoint.load_checkpoint(run_dir, restore_rng=False)
    if ck.step < last_done:
        raise AssertionError(f"{run_dir}: latest step {ck.step} < completed step {last_done}")
    if ck.extra != {"step": ck.step}:
        raise AssertionError(f"{run_dir}: extra {ck.extra} does not match step {ck.step}")
    for name, tensor in ck.model.items():
        if not bool((tensor == ck.step).all()):
            raise AssertionError(f"{run_dir}: {name} is not all {ck.step}")
    return ck.step


def trial(root: Path, rng: random.Random, max_delay_s: float) -> dict[str, object]:
    read_fd, write_fd = os.pipe()
    keep = rng.choice([1, 2, 3])
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            saver(root, keep, write_fd)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_fd)
    with os.fdopen(read_fd, "r") as reader:
        first = reader.readline()
        if not first:
            raise RuntimeError("saver died before its first checkpoint")
        time.sleep(rng.uniform(0.0, max_delay_s))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        done = [int(x) for x in (first + reader.read()).split()]
    return {"root": str(root), "last_done": done[-1], "keep": keep}


def run_trials(base: Path, trials: int, seed: int, max_delay_s: float) -> list[dict[str, object]]:
    torch.set_num_threads(1)  # no OpenMP pool in the parent: forking stays safe
    rng = random.Random(seed)
    return [trial(base / f"t{i}", rng, max_delay_s) for i in range(trials)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.3)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--no-check", action="store_true", help="only crash; print the trials (tests check)")
    args = parser.parse_args()
    base = args.root or Path(tempfile.mkdtemp(prefix="ckpt-crash-"))
    try:
        report(args, base)
    finally:
        if args.root is None:
            shutil.rmtree(base, ignore_errors=True)


def report(args: argparse.Namespace, base: Path) -> None:
    start = time.perf_counter()
    results = run_trials(base, args.trials, args.seed, args.max_delay)
    if args.no_check:
        print(json.dumps(results))
        return
    intact = 0
    failures = []
    saves = 0
    for res in results:
        try:
            check(Path(res["root"]) / "crash", int(res["last_done"]))
            intact += 1
        except Exception as exc:  # counted and reported, not hidden
            failures.append(str(exc)[:300])
        saves += int(res["last_done"]) + 1
    emit({
        "case": "checkpoint_crash", "trials": len(results), "intact": intact,
        "ratio_intact": intact / max(1, len(results)), "completed_saves": saves,
        "wall_s": round(time.perf_counter() - start, 2), "failures": failures[:5],
    })
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
