"""Smoke test of the torch.compile backend: `python -m rustorch_device.backend_check`.

Checks that dynamo finds "rust_backend" and "rustorch" by name (entry points, no import), compiles
a small model on the rustorch device, and compares outputs and gradients with eager rustorch.
Prints one JSON object; exit 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TOLERANCE = 1e-5


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x.cpu() - y.cpu()).abs().max()) for x, y in zip(a, b, strict=True))


def check(device: str = "rustorch", backend: str = "rust_backend") -> dict:
    import torch._dynamo

    from . import backend as rust

    names = torch._dynamo.list_backends(exclude_tags=())
    report: dict = {"registered": {n: n in names for n in ("rust_backend", "rustorch")}}
    torch.manual_seed(0)
    model = SmallNet().to(device)
    x = torch.randn(8, 1, 14, 14, device=device)
    target = torch.randint(0, 10, (8,), device=device)

    def grads_of(fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        out = fn(x)
        F.nll_loss(out, target).backward()
        return out.detach(), [p.grad.detach().clone() for p in model.parameters()]

    eager_out, eager_grads = grads_of(model)
    t0 = time.perf_counter()
    compiled = torch.compile(model, backend=backend, dynamic=False)
    out, grads = grads_of(compiled)
    report["compile_s"] = round(time.perf_counter() - t0, 2)
    report["max_abs_diff_output"] = _max_diff([out], [eager_out])
    report["max_abs_diff_grad"] = _max_diff(grads, eager_grads)
    report["output_device"] = str(out.device)
    report["stats"] = rust.stats()
    report["ok"] = bool(
        all(report["registered"].values())
        and report["output_device"].startswith(device)
        and report["max_abs_diff_output"] <= TOLERANCE
        and report["max_abs_diff_grad"] <= TOLERANCE
        and report["stats"]["rustorch_graphs"] >= 1
        and report["stats"]["generated_kernels"] > 0
        and report["stats"]["graph_breaks"] == 0
    )
    return report


def main() -> int:
    try:
        report = check()
    except Exception as e:  # a smoke test reports any failure as data, then exits 1
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
