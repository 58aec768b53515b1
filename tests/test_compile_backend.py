"""torch.compile(backend="rust_backend"): found by name through the entry-point group, outputs
and gradients equal to eager rustorch, graph breaks counted, Inductor really generates kernels.

Each case runs in a fresh interpreter (Inductor starts compile workers and keeps global state);
each compiles one small graph, and Inductor's FX cache makes reruns fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GROUP = "torch_dynamo_backends"


def _declared_entry_points() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["entry-points"][GROUP]


def _env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with the worktree and a dist-info declaring pyproject's dynamo entry points, so
    the name lookup works as after `pip install`, even when the installed metadata predates them."""
    dist = tmp_path / "site" / "rustorch_dynamo_ep-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rustorch-dynamo-ep\nVersion: 0.0\n")
    lines = [f"[{GROUP}]"] + [f"{k} = {v}" for k, v in _declared_entry_points().items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), str(tmp_path / "site"), env.get("PYTHONPATH")])
    )
    env.pop("TORCH_DEVICE_BACKEND_AUTOLOAD", None)
    return env


def _run(code_or_args: str | list[str], tmp_path: Path, timeout: int = 600) -> dict:
    args = code_or_args if isinstance(code_or_args, list) else ["-c", textwrap.dedent(code_or_args)]
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(lines[-1]) | {"_rc": proc.returncode, "_stderr": proc.stderr[-4000:]}


def test_entry_points_point_at_the_backend():
    from rustorch_device import backend

    declared = _declared_entry_points()
    assert set(declared) == {"rust_backend", "rustorch"}
    for target in declared.values():
        module, _, attr = target.partition(":")
        assert module == "rustorch_device.backend" and getattr(backend, attr) is backend.rust_backend


def test_backend_check_smoke(tmp_path):
    """`python -m rustorch_device.backend_check`: registered by name, compiles, matches eager."""
    report = _run(["-m", "rustorch_device.backend_check"], tmp_path)
    assert report["_rc"] == 0 and report["ok"], report
    assert report["registered"] == {"rust_backend": True, "rustorch": True}
    assert report["max_abs_diff_output"] <= 1e-5 and report["max_abs_diff_grad"] <= 1e-5
    assert report["stats"]["generated_kernels"] > 0  # fused C++ kernels, not the graph handed back


MNIST_STEP = """
import importlib.util, json
import torch, torch.nn.functional as F
import torch._inductor.config as inductor_config
from rustorch_device import backend

inductor_config.fallback_random = True  # dropout draws the same numbers as eager
spec = importlib.util.spec_from_file_location("m", "{script}")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)

def run(compiled):
    torch.manual_seed(0)
    model = m.Net().to("rustorch")
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    net = torch.compile(model, backend="rustorch", dynamic=False) if compiled else model
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 28, 28, generator=g).to("rustorch")
    y = torch.randint(0, 10, (16,), generator=g).to("rustorch")
    outs, grads = [], []
    for _ in range(2):  # two steps: the second runs on weights Adadelta updated
        torch.manual_seed(5)
        opt.zero_grad()
        out = net(x)
        F.nll_loss(out, y).backward()
        outs.append(out.detach().cpu())
        grads.append([p.grad.detach().cpu() for p in model.parameters()])
        opt.step()
    return outs, grads, str(out.device)

eo, eg, _ = run(False)
co, cg, dev = run(True)
print(json.dumps({{
    "device": dev,
    "out": max(float((a - b).abs().max()) for a, b in zip(eo, co)),
    "grad": max(float((a - b).abs().max()) for s, t in zip(eg, cg) for a, b in zip(s, t)),
    "stats": backend.stats(),
}}))
"""


def test_mnist_net_train_steps_match_eager(tmp_path):
    script = REPO / "examples" / "mnist_accelerator.py"
    r = _run(MNIST_STEP.format(script=script), tmp_path)
    assert r["_rc"] == 0, r["_stderr"]
    assert r["device"] == "rustorch:0"
    assert r["out"] <= 1e-5 and r["grad"] <= 1e-5, r
    assert r["stats"]["rustorch_graphs"] == 1 and r["stats"]["graph_breaks"] == 0
    assert r["stats"]["generated_kernels"] > 0


GRAPH_BREAK = """
import json, torch
import torch._dynamo
from rustorch_device import backend

def f(x):
    y = torch.sin(x) * 2
    torch._dynamo.graph_break()
    return torch.relu(y) + 1

x = torch.randn(32, device="rustorch")
out = torch.compile(f, backend="rust_backend")(x)
ref = torch.relu(torch.sin(x) * 2) + 1
print(json.dumps({"diff": float((out - ref).abs().max().cpu()), "stats": backend.stats()}))
"""


def test_graph_breaks_are_counted(tmp_path):
    r = _run(GRAPH_BREAK, tmp_path)
    assert r["_rc"] == 0, r["_stderr"]
    assert r["diff"] <= 1e-6
    assert r["stats"]["graph_breaks"] == 1 and r["stats"]["graphs"] == 2
    assert r["stats"]["rustorch_graphs"] == 2


def test_inductor_registration_is_idempotent():
    from torch._dynamo.device_interface import get_interface_for_device
    from torch._inductor.codegen.common import get_device_op_overrides, get_scheduling_for_device

    from rustorch_device import backend

    backend.register_inductor_device()
    scheduling = get_scheduling_for_device("rustorch")
    backend.register_inductor_device()
    assert scheduling is not None and get_scheduling_for_device("rustorch") is scheduling
    assert get_device_op_overrides("rustorch").synchronize() == "pass"
    assert get_interface_for_device("rustorch").is_triton_capable() is False
