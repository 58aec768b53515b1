"""Stage functions the example pipelines use (`python = "rustorch_tools.pipeline.builtins:..."`).

Each takes plain params (checked against these signatures before a pipeline runs), may take
`ctx` (the StageContext: its run, its outputs folder) and returns a dict of outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def noop(ctx: Any = None, value: int = 0) -> dict[str, Any]:
    """Does nothing but return `value` (benchmarks the pipeline machinery)."""
    return {"value": value}


def check_mnist(root: str, min_train: int = 1000, ctx: Any = None) -> dict[str, Any]:
    """Reads MNIST from the folder `root` (as the trainer's `mnist` dataset does: the IDX files
    inside it, in `root/raw/` or `root/MNIST/raw/`), checks shapes, labels and class balance,
    logs the counts into the stage's run and returns them."""
    import torch

    from ..train import idx

    train, test = idx.read_split(root, "train"), idx.read_split(root, "test")
    for name, split in (("train", train), ("test", test)):
        if tuple(split.images.shape[1:]) != (28, 28):
            raise ValueError(f"{name} images are {tuple(split.images.shape[1:])}, not 28x28")
    if len(train) < min_train:
        raise ValueError(f"only {len(train)} training samples (< min_train {min_train})")
    counts = torch.bincount(train.labels, minlength=10)
    smallest = float(counts.min()) / float(counts.sum())
    if smallest < 0.05:
        raise ValueError(f"class balance off: the rarest class is {100 * smallest:.1f} % of the set")
    if ctx is not None:
        ctx.run.log_metrics({"data/train_samples": len(train), "data/test_samples": len(test),
                             "data/rarest_class_fraction": smallest}, step=0)
    return {"source": str(Path(train.files[0]).parent), "train_samples": len(train),
            "test_samples": len(test)}


def evaluate_runs(runs: list[str], configs: list[dict[str, Any]], metric: str = "eval/accuracy",
                  eval_limit: int | None = None, baseline: str = "", ctx: Any = None) -> dict[str, Any]:
    """Re-evaluates each training run's latest checkpoint on its test set, logs a row per run
    into this stage's run, and returns the best run, its value, and the baseline to gate
    against (`baseline`, or else the first run)."""
    from ..checkpoint import load_checkpoint
    from ..train.config import build_trainer, resolve

    if len(runs) != len(configs) or not runs:
        raise ValueError(f"need one config per run, got {len(runs)} runs and {len(configs)} configs")
    scores: dict[str, float] = {}
    for i, (run_id, cfg) in enumerate(zip(runs, configs, strict=True)):
        cfg = resolve(cfg)
        if eval_limit is not None:
            cfg = {**cfg, "data": {**cfg["data"], "eval_limit": eval_limit}}
        trainer = build_trainer(cfg, run=None)
        load_checkpoint(ctx.runs_dir / run_id if ctx is not None else run_id, model=trainer.model,
                        map_location=trainer.device, restore_rng=False)
        result = trainer.evaluate()
        if metric not in result:
            raise KeyError(f"metric {metric!r} not among {sorted(result)}")
        scores[run_id] = result[metric]
        if ctx is not None:
            ctx.run.log_metrics({metric: result[metric], "eval/loss": result["eval/loss"]}, step=i)
    best = max(scores, key=scores.__getitem__)
    return {"best_run": best, "best_value": scores[best], "scores": scores,
            "baseline": baseline or runs[0]}
