"""Training described as data: a plain dict (or TOML file) -> a Trainer -> a logged run.

    name = "mnist"          seed = 1          device = "rustorch"    epochs = 3
    loss = "nll"            grad_accum = 1    autocast = false       compile = "rust_backend"
    checkpoint_every = 0    max_steps_per_epoch = 0                  profile_steps = 0
    [model]      name = "mnist_cnn"
    [optimizer]  name = "adadelta"   lr = 1.0
    [scheduler]  name = "onecycle"   max_lr = 1.0   interval = "step"
    [data]       name = "mnist"      batch_size = 64
    [early_stopping]  metric = "eval/accuracy"   mode = "max"   patience = 2

The resolved config (defaults filled in) is the run's config, with `entry_point` naming
`run_config` and the seed as the run's seed, so that the run alone says how to train again.
"""

from __future__ import annotations

import os
import random
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..typecheck import REQUIRED, check_params, describe
from .registry import DATASETS, DEFAULT_INTERVAL, MODELS, OPTIMIZERS, SCHEDULERS

ENTRY_POINT = "rustorch_tools.train.config:run_config"

# top-level key: (annotation, default)
TOP: dict[str, tuple[Any, Any]] = {
    "name": (str, "train"),
    "seed": (int, 0),
    "device": (str | None, None),
    "epochs": (int, 1),
    "loss": (str, "cross_entropy"),
    "grad_accum": (int, 1),
    "autocast": (bool, False),
    "autocast_dtype": (str | None, None),
    "compile": (str | None, None),
    "checkpoint_every": (int, 0),
    "checkpoint_each_epoch": (bool, True),
    "keep_checkpoints": (int, 3),
    "max_steps_per_epoch": (int, 0),
    "log_every": (int, 1),
    "progress": (bool | None, None),
    "profile_steps": (int, 0),
    "entry_point": (str, ENTRY_POINT),
}
SECTIONS = {"model": MODELS, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "data": DATASETS}
LOSSES = ("cross_entropy", "nll")


class ConfigError(RustorchToolsError, ValueError):
    """A training config that cannot be run; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid training config:\n" + "\n".join(f"  - {p}" for p in problems))


def check(config: Any) -> list[str]:
    """Every problem of a training config (empty when it can run)."""
    if not isinstance(config, dict):
        return [f"a training config must be a table, got {type(config).__name__}"]
    problems: list[str] = []
    top = {k: v for k, v in config.items() if k not in SECTIONS and k != "early_stopping"}
    spec = {k: (a, d) for k, (a, d) in TOP.items()}
    problems += check_params("config", top, spec)
    for key in ("epochs", "grad_accum", "log_every", "keep_checkpoints"):
        if isinstance(config.get(key), int) and config[key] < 1:
            problems.append(f"config: {key} must be >= 1, got {config[key]}")
    for key in ("checkpoint_every", "max_steps_per_epoch", "profile_steps"):
        if isinstance(config.get(key), int) and config[key] < 0:
            problems.append(f"config: {key} must be >= 0, got {config[key]}")
    if config.get("loss", "cross_entropy") not in LOSSES:
        problems.append(f"config: loss must be one of {LOSSES}, got {config.get('loss')!r}")
    for section, registry in SECTIONS.items():
        value = config.get(section)
        if value is None and section == "scheduler":
            continue
        if not isinstance(value, dict):
            problems.append(f"[{section}] table missing (a table with name = ...)")
            continue
        problems += registry.check(value)
        if section == "scheduler" and value.get("interval", "step") not in ("step", "epoch"):
            problems.append(f"[scheduler]: interval must be 'step' or 'epoch', got {value.get('interval')!r}")
    es = config.get("early_stopping")
    if es is not None:
        es_spec = {"metric": (str, REQUIRED), "mode": (str, "max"), "patience": (int, 2),
                   "min_delta": (float, 0.0)}
        if isinstance(es, dict):
            problems += check_params("[early_stopping]", es, es_spec)
        else:
            problems.append("[early_stopping] must be a table")
    return problems


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every top-level default filled in (what the run records)."""
    problems = check(config)
    if problems:
        raise ConfigError(problems)
    out = {k: default for k, (_, default) in TOP.items()}
    out.update(config)
    if out.get("scheduler") is not None:
        sched = dict(out["scheduler"])
        sched.setdefault("interval", DEFAULT_INTERVAL[sched["name"]])
        out["scheduler"] = sched
    return out


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML training config (ConfigError on a syntax error, with the file named)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or exc}"]) from None


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the accelerator's generator too


def pick_device(name: str | None) -> Any:
    import torch

    if name is not None:
        return torch.device(name)
    if torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    return torch.device("cpu")


def build_trainer(config: dict[str, Any], run: Any = None, **trainer_kwargs: Any) -> Any:
    """A Trainer for a resolved config (seeds everything first, so model init is reproducible)."""
    import torch
    import torch.nn.functional as F

    from .loop import EarlyStopping, Trainer, _rank

    cfg = resolve(config)
    seed_everything(cfg["seed"])
    rank, world = _rank()
    train_loader, eval_loader = DATASETS.build(cfg["data"], seed=cfg["seed"], rank=rank, world=world)
    model = MODELS.build(cfg["model"])
    device = pick_device(cfg["device"])
    model.to(device)
    optimizer = OPTIMIZERS.build(cfg["optimizer"], model.parameters())
    scheduler, interval = None, "epoch"
    steps_per_epoch = -(-len(train_loader) // cfg["grad_accum"])
    if cfg["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, cfg["max_steps_per_epoch"])
    if cfg.get("scheduler") is not None:
        interval = cfg["scheduler"]["interval"]
        total = cfg["epochs"] * (steps_per_epoch if interval == "step" else 1)
        scheduler = SCHEDULERS.build(cfg["scheduler"], optimizer, total_steps=total)
    es = cfg.get("early_stopping")
    dtype = getattr(torch, cfg["autocast_dtype"]) if cfg["autocast_dtype"] else None
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise ConfigError([f"config: autocast_dtype {cfg['autocast_dtype']!r} is not a torch dtype"])
    return Trainer(
        model, optimizer, train_loader, device,
        loss_fn=F.nll_loss if cfg["loss"] == "nll" else F.cross_entropy,
        eval_loader=eval_loader, scheduler=scheduler, scheduler_interval=interval,
        epochs=cfg["epochs"], grad_accum=cfg["grad_accum"], autocast=cfg["autocast"],
        autocast_dtype=dtype, checkpoint_every=cfg["checkpoint_every"] or None,
        checkpoint_each_epoch=cfg["checkpoint_each_epoch"], keep_checkpoints=cfg["keep_checkpoints"],
        early_stopping=EarlyStopping(**es) if es else None, run=run,
        max_steps_per_epoch=cfg["max_steps_per_epoch"] or None, show_progress=cfg["progress"],
        compile_backend=cfg["compile"], log_every=cfg["log_every"], **trainer_kwargs)


def run_config(config: dict[str, Any], runs_dir: str | os.PathLike[str] = "runs", *,
               run_id: str | None = None, resume: bool = False, parent: str | None = None,
               tags: dict[str, str] | None = None, on_run_start: Callable[[Any], None] | None = None,
               **trainer_kwargs: Any) -> dict[str, Any]:
    """Train as `config` says into a run under `runs_dir`; returns the run id, the final
    evaluation metrics, the epochs/steps done and whether it stopped early.

    `run_id` + `resume=True` continue that run from its latest checkpoint. `on_run_start(run)`
    is called once the run is open and the seed is set, before anything is built or trained:
    where an entry point records itself for replay (`repro.record.record_entry_point`).
    `trainer_kwargs` (e.g. on_epoch_end) go to the Trainer and are not recorded."""
    from .. import start_run

    cfg = resolve(config)
    with start_run(root=str(runs_dir), name=cfg["name"], config=cfg, seed=cfg["seed"], run_id=run_id,
                   parent=parent, tags=tags) as run:
        return train_in_run(cfg, run, resume=resume, on_run_start=on_run_start, **trainer_kwargs)


def train_in_run(config: dict[str, Any], run: Any, *, resume: bool = False,
                 on_run_start: Callable[[Any], None] | None = None, **trainer_kwargs: Any) -> dict[str, Any]:
    """The body of `run_config` for a run opened by the caller (a pipeline stage's run)."""
    cfg = resolve(config)
    if on_run_start is not None:
        seed_everything(cfg["seed"])
        on_run_start(run)
    trainer = build_trainer(cfg, run, **trainer_kwargs)
    run.log_params({"model": cfg["model"]["name"], "optimizer": cfg["optimizer"]["name"],
                    "data": cfg["data"]["name"], "device": str(trainer.device),
                    "train_batches": len(trainer.train_loader)})
    result = trainer.fit(resume=resume)
    if cfg["profile_steps"]:
        trainer.profile(steps=cfg["profile_steps"])
    run.log_device_telemetry(trainer.step)
    return {"run_id": run.run_id, "run_dir": str(run.dir), "metrics": result.metrics,
            "epochs": result.epochs, "steps": result.step, "stopped_early": result.stopped_early,
            "config": cfg}


def data_files(config: dict[str, Any]) -> list[Path]:
    """The files the config's dataset reads (what a replay record digests): the IDX files of
    an `mnist` root; none for the generated sets."""
    data = config["data"]
    if data["name"] == "mnist":
        from .data import mnist_files

        return mnist_files(data["root"])
    return []


def record_for_replay(config: dict[str, Any], run: Any) -> None:
    """Record `run` for `replay` as a run of the config alone: `python -m rustorch_tools.train
    --config-json <resolved config> --runs-dir <its RUNS_DIR>` trains it again (an
    `on_run_start` callback: the pipeline's train stages and `python -m rustorch_tools.train`
    use it)."""
    import json

    from ..repro.record import record_entry_point

    cfg = resolve(config)
    argv = ["--config-json", json.dumps(cfg, sort_keys=True, allow_nan=False), "--runs-dir", str(Path(run.dir).parent)]
    record_entry_point(run, module="rustorch_tools.train", argv=argv, data_files=data_files(cfg),
                       device=str(pick_device(cfg["device"])))


def describe_config() -> str:
    """What every registry name accepts (for --help texts and docs)."""
    from ..typecheck import parameters

    lines = []
    for section, registry in SECTIONS.items():
        for name, fn in sorted(registry.entries.items()):
            spec = parameters(fn, skip=registry.skip[name])
            args = ", ".join(f"{k}: {describe(a)}" for k, (a, _) in spec.items())
            lines.append(f"[{section}] {name}({args})")
    return "\n".join(lines)


def config_path_or_dict(source: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    return source if isinstance(source, dict) else load(Path(source))
