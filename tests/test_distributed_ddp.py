"""examples/ddp_mnist.py on rgloo: 2-rank DDP equals 1 process with the same global batch, the
ranks' parameters stay bit-identical, and a run resumed from its checkpoint continues exactly.

Three launches share one module fixture: A (2 ranks, 6 steps, checkpoint at step 4),
B (1 rank, twice the batch, 6 steps), C (2 ranks, resume of A's run from step 4 to 6).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_distributed import REPO, describe, spawn  # noqa: E402

EXAMPLE = str(REPO / "examples" / "ddp_mnist.py")
STEPS = 6
BATCH = 16  # per rank


def _run(tmp: Path, tag: str, nproc: int, data: Path, *extra: str) -> dict[str, object]:
    log = tmp / f"{tag}.jsonl"
    args = [
        EXAMPLE, "--data", str(data), "--train-subset", "640", "--max-steps", str(STEPS),
        "--workers", "0", "--no-dropout", "--timeout", "60", "--loss-log", str(log), *extra,
    ]
    results = spawn(args, tmp, timeout=400, nproc=nproc)
    assert all(r.returncode == 0 for r in results), describe(results)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    losses = {row["step"]: row["loss"] for row in rows if "step" in row}
    digests = next(row["digests"] for row in rows if "digests" in row)
    return {"losses": losses, "digests": digests}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("ddp")
    root = tmp / "runs"
    a = _run(tmp, "a", 2, mnist_root, "--batch-size", str(BATCH), "--runs", str(root),
             "--checkpoint-every", "4")
    b = _run(tmp, "b", 1, mnist_root, "--batch-size", str(2 * BATCH), "--runs", "")
    (run_id,) = [p.name for p in root.iterdir() if p.is_dir()]
    c = _run(tmp, "c", 2, mnist_root, "--batch-size", str(BATCH), "--runs", str(root),
             "--checkpoint-every", "4", "--resume", run_id)
    return {"a": a, "b": b, "c": c, "run_dir": root / run_id}


@pytest.fixture(scope="module")
def mnist_root() -> Path:
    # Module-scoped twin of conftest's fixture: one set of launches per module.
    root = Path(os.environ.get("RUSTORCH_DATA", REPO.parent / "shared" / "data"))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"full MNIST not found under {root}")
    return root


def test_parameters_identical_across_ranks(runs: dict) -> None:
    for key in ("a", "c"):
        digests = runs[key]["digests"]
        assert len(digests) == 2 and digests[0] == digests[1], digests


def test_losses_match_single_process_with_same_global_batch(runs: dict) -> None:
    a, b = runs["a"]["losses"], runs["b"]["losses"]
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])


def test_resume_continues_the_run_exactly(runs: dict) -> None:
    a, c = runs["a"], runs["c"]
    assert sorted(c["losses"]) == [5, 6], c["losses"]
    for step in (5, 6):
        assert c["losses"][step] == a["losses"][step], (step, c["losses"][step], a["losses"][step])
    assert c["digests"] == a["digests"]


def test_rank0_logged_the_run(runs: dict) -> None:
    run_dir: Path = runs["run_dir"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "train/loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6, 5, 6], steps  # A's six steps, then C's resumed two
    assert any(p.name.startswith("ckpt-") for p in (run_dir / "checkpoints").iterdir())
    events = (run_dir / "events.jsonl").read_text()
    assert '"resumed"' in events
