"""Train 20 steps, checkpoint at 10, resume in a new process: steps 11-20 bit-identical.

The full run happens in the test process; the resume runs `train("resume", ...)` of this same
module in a fresh interpreter (one torch import instead of two).
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rustorch_tools
from rustorch_tools import checkpoint
from rustorch_tools.store import runs

REPO = Path(__file__).resolve().parent.parent


def train(mode: str, device: str, root: str) -> dict[int, str]:
    """Steps 1-20 (`full`, checkpoint at 10) or 11-20 (`resume`); loss.hex() per step."""
    seed = 0 if mode == "full" else 999  # the resumed process must get everything from the checkpoint
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(32, 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
    target = torch.linspace(-1, 1, 16).unsqueeze(1)
    losses = {}
    with rustorch_tools.start_run(root, run_id="train", config={"device": device}) as run:
        first = 1
        if mode == "resume":
            ck = checkpoint.resume(run, model=model, optimizer=opt, scheduler=sched)
            first = ck.step + 1
        for step in range(first, 21):
            x = torch.randn(16, 8).to(device)  # torch CPU RNG
            scale = 1.0 + 0.01 * float(np.random.randn()) + 0.01 * random.random()  # numpy, python
            model.train()
            out = model(x)  # dropout: the device's RNG
            loss = ((out - target.to(device)) ** 2).mean() * scale
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run.log_metrics({"loss": loss.item()}, step=step)
            losses[step] = loss.item().hex()
            if mode == "full" and step == 10:
                run.save_checkpoint(model=model, optimizer=opt, scheduler=sched, step=step)
    return losses


def resume_in_new_process(device: str, root: Path) -> dict[int, str]:
    code = ("import sys, test_checkpoint_resume as t\n"
            "for s, h in sorted(t.train('resume', sys.argv[1], sys.argv[2]).items()): print(s, h)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    out = subprocess.run([sys.executable, "-c", code, device, str(root)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return {int(s): h for s, h in (line.split() for line in out.stdout.splitlines())}


def device_available() -> bool:
    try:
        import rustorch_device  # noqa: F401

        torch.empty(1, device="rustorch")
        return True
    except Exception:
        return False


@pytest.mark.parametrize("device", ["cpu", "rustorch"])
def test_resume_in_new_process_is_bit_identical(tmp_path, device):
    if device == "rustorch" and not device_available():
        pytest.skip("rustorch device not built in this checkout (build_ext --inplace)")
    full = train("full", device, str(tmp_path))
    assert sorted(full) == list(range(1, 21))
    assert len(set(full.values())) == 20  # the losses really change step to step
    resumed = resume_in_new_process(device, tmp_path)
    assert sorted(resumed) == list(range(11, 21))
    assert resumed == {s: full[s] for s in range(11, 21)}
    events = [e["event"] for e in runs.iter_events(tmp_path / "train")]
    assert events == ["created", "checkpointed", "finished", "resumed", "resumed", "finished"]
