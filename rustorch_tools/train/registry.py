"""Names a TOML config can use for models, optimizers, schedulers and datasets, each with the
parameters it accepts (checked before anything is built).

Add an entry with `MODELS.add("name", builder)`; the builder's signature (names, type hints,
defaults) is what a config is checked against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..typecheck import REQUIRED, check_params, parameters
from . import data, models


@dataclass
class Registry:
    kind: str
    entries: dict[str, Callable[..., Any]] = field(default_factory=dict)
    skip: dict[str, tuple[str, ...]] = field(default_factory=dict)  # builder args the trainer fills

    def add(self, name: str, builder: Callable[..., Any], skip: tuple[str, ...] = ()) -> None:
        self.entries[name] = builder
        self.skip[name] = skip

    def check(self, section: dict[str, Any]) -> list[str]:
        name = section.get("name")
        if not isinstance(name, str):
            return [f"[{self.kind}]: 'name' must be one of {', '.join(sorted(self.entries))}"]
        if name not in self.entries:
            return [f"[{self.kind}]: unknown {self.kind} {name!r} (known: {', '.join(sorted(self.entries))})"]
        given = {k: v for k, v in section.items() if k not in ("name", "interval")}
        spec = parameters(self.entries[name], skip=self.skip[name])
        return check_params(f"[{self.kind}] {name}", given, spec)

    def build(self, section: dict[str, Any], *args: Any, **fill: Any) -> Any:
        given = {k: v for k, v in section.items() if k not in ("name", "interval")}
        return self.entries[section["name"]](*args, **given, **fill)


MODELS = Registry("model")
MODELS.add("mnist_cnn", models.MnistCNN)
MODELS.add("mlp", models.MLP)
MODELS.add("resnet18", models.resnet18)
MODELS.add("small_transformer", models.SmallTransformer)

DATASETS = Registry("data")
_FILLED = ("seed", "rank", "world")
DATASETS.add("mnist", data.mnist, skip=_FILLED)
DATASETS.add("synthetic", data.synthetic, skip=_FILLED)
DATASETS.add("synthetic_tokens", data.synthetic_tokens, skip=_FILLED)


def _sgd(params: Any, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0,
         nesterov: bool = False) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def _adam(params: Any, lr: float = 1e-3, betas: list[float] | None = None, weight_decay: float = 0.0,
          eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas or (0.9, 0.999)), weight_decay=weight_decay, eps=eps)


def _adamw(params: Any, lr: float = 1e-3, betas: list[float] | None = None, weight_decay: float = 0.01,
           eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas or (0.9, 0.999)), weight_decay=weight_decay, eps=eps)


def _adadelta(params: Any, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
              weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)


OPTIMIZERS = Registry("optimizer")
for _name, _fn in (("sgd", _sgd), ("adam", _adam), ("adamw", _adamw), ("adadelta", _adadelta)):
    OPTIMIZERS.add(_name, _fn, skip=("params",))

_S = torch.optim.lr_scheduler


def _step(opt: Any, total_steps: int, step_size: int = 1, gamma: float = 0.7) -> Any:
    return _S.StepLR(opt, step_size=step_size, gamma=gamma)


def _exponential(opt: Any, total_steps: int, gamma: float = 0.9) -> Any:
    return _S.ExponentialLR(opt, gamma=gamma)


def _cosine(opt: Any, total_steps: int, eta_min: float = 0.0) -> Any:
    return _S.CosineAnnealingLR(opt, T_max=total_steps, eta_min=eta_min)


def _onecycle(opt: Any, total_steps: int, max_lr: float = REQUIRED, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4, anneal_strategy: str = "cos",
              three_phase: bool = False) -> Any:
    # Momentum is not cycled: Adadelta has none, and a changing beta would recompile a
    # compiled optimizer step. A short run (smoke tests) would leave the warm-up phase under
    # two steps, which OneCycleLR divides by zero on: it gets two steps of warm-up then.
    if total_steps >= 4:
        pct_start = min(max(pct_start, 2.0 / total_steps), 0.5)
    return _S.OneCycleLR(opt, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                         div_factor=div_factor, final_div_factor=final_div_factor,
                         anneal_strategy=anneal_strategy, three_phase=three_phase, cycle_momentum=False)


SCHEDULERS = Registry("scheduler")
for _name, _fn in (("step", _step), ("exponential", _exponential), ("cosine", _cosine),
                   ("onecycle", _onecycle)):
    SCHEDULERS.add(_name, _fn, skip=("opt", "total_steps"))
# The interval each scheduler steps at unless the config says `interval = "step"|"epoch"`.
DEFAULT_INTERVAL = {"step": "epoch", "exponential": "epoch", "cosine": "step", "onecycle": "step"}
