"""SIGKILL at random points during save_checkpoint: the latest loadable checkpoint is intact.

benchmarks/checkpoint_crash.py forks the savers (one torch import for all trials) and kills
them; this test checks every trial directory itself. The benchmark runs 200 trials.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rustorch_tools import checkpoint
from rustorch_tools.store import manifest, repair

REPO = Path(__file__).resolve().parent.parent
TRIALS = 12


def check_intact(run_dir: Path, last_done: int) -> None:
    ck = checkpoint.load_checkpoint(run_dir, restore_rng=False)
    assert ck.step >= last_done, (ck.step, last_done)  # nothing that completed is lost
    assert ck.extra == {"step": ck.step}
    for name, tensor in ck.model.items():
        assert bool((tensor == ck.step).all()), name


def test_sigkill_during_save_never_loses_the_latest(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "checkpoint_crash.py"), "--trials", str(TRIALS),
         "--seed", "7", "--root", str(tmp_path), "--no-check"],
        env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    assert len(results) == TRIALS
    for res in results:
        run_dir = Path(res["root"]) / "crash"
        check_intact(run_dir, res["last_done"])
        # The run is repairable: afterwards the manifest matches the files again.
        repair.repair_run(run_dir, now=time.time() + 3600)
        assert manifest.verify(run_dir) == []
        check_intact(run_dir, res["last_done"])
