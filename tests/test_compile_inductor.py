"""Plain `torch.compile(backend="inductor")` on rustorch tensors (issue 11, item 8).

Inductor finds the device through torch.rustorch's codegen attributes when it first compiles
(rustorch_device/backend.py: inductor_codegen); no rust_backend compile or import is needed
before, and one before must not break it. Outputs and gradients within 1e-5 of eager. Runs in
a fresh interpreter so that the lazy registration is what is tested.
"""

from __future__ import annotations

import json

import pytest
from device_helpers import run_python

CODE = r"""
import copy, json, sys
import torch
from torch import nn
import torch._inductor.utils as iu

D = "rustorch"
torch.manual_seed(0)
FULL = sys.argv[1] == "full"
if FULL:  # conv / max-pool graphs, train and eval, and a CPU compile
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(36, 10), nn.LogSoftmax(1))
    x = torch.randn(3, 1, 8, 8)
else:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(5, 8)

def run(compiled, train):
    m = copy.deepcopy(model).to(D).train(train)
    f = torch.compile(m, backend="inductor") if compiled else m
    xs = x.to(D).requires_grad_()
    y = f(xs)
    y.sin().sum().backward()
    return [y.detach().cpu(), xs.grad.cpu()] + [p.grad.cpu() for p in m.parameters()]

out = {}
if not FULL:  # a rust_backend compile first must not break plain Inductor
    lin = nn.Linear(3, 3).to(D)
    torch.compile(lin, backend="rust_backend")(torch.randn(2, 3, device=D)).sum().backward()
for train in ((True, False) if FULL else (True,)):
    eager, comp = run(False, train), run(True, train)
    out[f"train={train}"] = max((a - b).abs().max().item() for a, b in zip(eager, comp))
# Dropout's random kernels on the device (the "triton" backend choice broke them).
drop = torch.compile(nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5)).to(D), backend="inductor")
y = drop(torch.randn(8, 4, device=D))
out["dropout_zero_fraction"] = (y == 0).float().mean().item()
out["dropout_device"] = y.device.type
# CPU answers of the wrapped Inductor helpers are unchanged.
out["cpu_backend"] = iu.get_current_backend("cpu") == torch._inductor.config.cpu_backend
if FULL:
    cpu_model = copy.deepcopy(model)
    cpu_out = torch.compile(cpu_model, backend="inductor")(x)
    out["cpu_diff"] = (cpu_out - cpu_model(x)).abs().max().item()
print(json.dumps(out))
"""


def _check(mode: str) -> None:
    res = json.loads(run_python(CODE.replace("sys.argv[1]", repr(mode)), timeout=600)
                     .strip().splitlines()[-1])
    assert all(v <= 1e-5 for k, v in res.items() if k.startswith("train=")), res
    assert res["dropout_device"] == "rustorch" and 0.3 < res["dropout_zero_fraction"] < 0.7, res
    assert res["cpu_backend"] and res.get("cpu_diff", 0.0) <= 1e-5, res


def test_plain_inductor_after_rust_backend_matches_eager():
    """An MLP's forward and backward, after a rust_backend compile in the same process."""
    _check("after_rust_backend")


@pytest.mark.slow
def test_plain_inductor_cnn_train_and_eval_match_eager():
    _check("full")
