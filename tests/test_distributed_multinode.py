"""Two "nodes" on 127.0.0.1: `torchrun --nnodes 2 --nproc-per-node 1` with the c10d rendezvous
trains examples/ddp_mnist.py to the same parameters (within 1e-5) as one process with the global
batch. Each node is its own torchrun agent, as on two hosts; they meet at the rendezvous endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support.local_launch import free_port  # noqa: E402
from test_distributed import REPO, entry_point_env  # noqa: E402

EXAMPLE = str(REPO / "examples" / "ddp_mnist.py")
BATCH = 16  # per rank
STEPS = 4
TIMEOUT_S = 300


def _example_args(data: Path, batch: int, params: Path) -> list[str]:
    return [
        "--data", str(data), "--train-subset", "320", "--max-steps", str(STEPS),
        "--batch-size", str(batch), "--workers", "0", "--no-dropout", "--timeout", "60",
        "--runs", "", "--save-params", str(params),
    ]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _run_all(tmp: Path, data: Path) -> tuple[list[int], list[str], Path, Path]:
    """Two torchrun agents (one rank each) and, at the same time, the one-process reference;
    waits for all three (killed at TIMEOUT_S). Returns exit codes, log tails and param files."""
    port = free_port()
    two, one = tmp / "two_nodes.pt", tmp / "one_process.pt"
    env = entry_point_env(tmp)
    procs, logs = [], []
    for node in range(2):
        logs.append(tmp / f"node{node}.log")
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            "--nnodes", "2", "--nproc-per-node", "1", "--max-restarts", "0",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", f"rustorch-test-{port}", "--local-addr", "127.0.0.1",
            EXAMPLE, *_example_args(data, BATCH, two),
        ]
        procs.append(_start(cmd, env, logs[-1]))
    logs.append(tmp / "one.log")
    single_env = dict(env, RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()))
    procs.append(_start([sys.executable, EXAMPLE, *_example_args(data, 2 * BATCH, one)],
                        single_env, logs[-1]))
    deadline = time.monotonic() + TIMEOUT_S
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the process's own session: agent and worker
            p.wait()
            codes.append(-999)
    return codes, [log.read_text()[-4000:] for log in logs], two, one


@pytest.fixture(scope="module")
def mnist_root() -> Path:
    root = Path(os.environ.get("RUSTORCH_DATA", REPO.parent / "shared" / "data"))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"full MNIST not found under {root}")
    return root


def test_two_nodes_match_one_process_with_global_batch(tmp_path: Path, mnist_root: Path) -> None:
    codes, logs, two, one = _run_all(tmp_path, mnist_root)
    assert codes == [0, 0, 0], "\n".join(
        f"--- {name} rc={c}\n{t}"
        for name, c, t in zip(("node 0", "node 1", "one process"), codes, logs, strict=True)
    )
    assert "parameters identical on all 2 ranks: True" in "".join(logs[:2]), logs
    a, b = torch.load(two), torch.load(one)
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-5, f"2 nodes vs 1 process: max |diff| = {worst}"
    # Not vacuous: training moved the parameters away from the example's initial ones.
    sys.path.insert(0, str(REPO / "examples"))
    from ddp_mnist import Net

    torch.manual_seed(1)  # the example's default --seed
    init = dict(Net(dropout=False).named_parameters())
    assert all(not torch.equal(a[k], init[k].detach()) for k in a)
