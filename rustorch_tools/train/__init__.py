"""rustorch_tools.train: an explicit training loop and training described as data.

    from rustorch_tools.train import Trainer, TensorLoader
    trainer = Trainer(model, optimizer, train_loader, "rustorch", eval_loader=test_loader,
                      epochs=3, checkpoint_every=100, run=run)
    trainer.fit(resume=True)            # continues the run's latest checkpoint bit-exactly
    trainer.profile(steps=5)            # a torch.profiler trace as a run artifact

    from rustorch_tools.train import run_config, load
    run_config(load("train.toml"), runs_dir="runs")   # registry names, no code

Modules: `loop` (Trainer, EarlyStopping), `loaders` (TensorLoader), `observe` (phase times,
fallback ops, allocator stats, timeline), `progress` (quiet bars), `registry` (models,
optimizers, schedulers, datasets), `models`, `data`, `config` (check/resolve/run a config).
See docs/training.md.
"""

from .config import ConfigError, build_trainer, check, load, resolve, run_config
from .loaders import TensorLoader
from .loop import EarlyStopping, FitResult, Trainer, TrainerError

__all__ = ["Trainer", "TrainerError", "EarlyStopping", "FitResult", "TensorLoader", "ConfigError",
           "build_trainer", "check", "load", "resolve", "run_config"]
