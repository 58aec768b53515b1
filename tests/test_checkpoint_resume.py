"""Train 20 steps, checkpoint at 10, resume in a new process: steps 11-20 bit-identical."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TRAIN = textwrap.dedent("""
    import random, sys
    import numpy as np
    import torch
    import rustorch_tools
    from rustorch_tools import checkpoint

    mode, device, root = sys.argv[1], sys.argv[2], sys.argv[3]
    if device == "rustorch":
        import rustorch_device  # noqa: F401
    seed = 0 if mode == "full" else 999  # the resumed process must get everything from the checkpoint
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)

    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(32, 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
    target = torch.linspace(-1, 1, 16).unsqueeze(1)

    with rustorch_tools.start_run(root, run_id="train", config={"device": device}) as run:
        first = 1
        if mode == "resume":
            ck = checkpoint.resume(run, model=model, optimizer=opt, scheduler=sched)
            first = ck.step + 1
        for step in range(first, 21):
            x = torch.randn(16, 8).to(device)                  # torch CPU RNG
            scale = 1.0 + 0.01 * float(np.random.randn()) + 0.01 * random.random()  # numpy, python
            model.train()
            out = model(x)                                      # dropout: the device's RNG
            loss = ((out - target.to(device)) ** 2).mean() * scale
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run.log_metrics({"loss": loss.item()}, step=step)
            print(step, loss.item().hex(), flush=True)
            if mode == "full" and step == 10:
                run.save_checkpoint(model=model, optimizer=opt, scheduler=sched, step=step)
""")


def train(mode: str, device: str, root: Path) -> dict[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", TRAIN, mode, device, str(root)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return {int(s): h for s, h in (line.split() for line in out.stdout.splitlines())}


def device_built() -> bool:
    probe = "import rustorch_device, torch; torch.empty(1, device='rustorch')"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0


@pytest.mark.parametrize("device", ["cpu", "rustorch"])
def test_resume_in_new_process_is_bit_identical(tmp_path, device):
    if device == "rustorch" and not device_built():
        pytest.skip("rustorch device not built in this checkout (build_ext --inplace)")
    full = train("full", device, tmp_path)
    assert sorted(full) == list(range(1, 21))
    resumed = train("resume", device, tmp_path)
    assert sorted(resumed) == list(range(11, 21))
    assert {s: full[s] for s in range(11, 21)} == resumed
    assert len(set(full.values())) == 20  # the losses really change step to step

    from rustorch_tools.store import runs

    events = [e["event"] for e in runs.iter_events(tmp_path / "train")]
    assert events == ["created", "checkpointed", "finished", "resumed", "resumed", "finished"]
