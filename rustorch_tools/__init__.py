"""rustorch_tools: experiment logging, checkpoints, governance and analytics.

    with rustorch_tools.start_run(root="runs", name="mnist", config=cfg) as run:
        run.log_metrics({"loss": loss}, step=i)
        run.save_checkpoint(model=model, optimizer=opt, step=i)

`save_checkpoint`, `load_checkpoint` and `resume` come from rustorch_tools.checkpoint, which
imports torch; they are loaded on first use so that the CLI stays light.
"""

from typing import Any

from .errors import (
    CorruptCheckpointError,
    InvalidNameError,
    RunNotFoundError,
    RustorchToolsError,
)
from .run import NonFiniteMetricWarning, Run, attach_run, start_run

_CHECKPOINT_NAMES = ("save_checkpoint", "load_checkpoint", "resume", "Checkpoint")


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT_NAMES:
        from . import checkpoint

        return getattr(checkpoint, name)
    if name == "read_metrics":
        from .metrics import read_metrics

        return read_metrics
    if name == "RunStore":
        from .store.runstore import RunStore

        return RunStore
    raise AttributeError(f"module 'rustorch_tools' has no attribute {name!r}")


__all__ = [
    "start_run", "attach_run", "Run", "NonFiniteMetricWarning",
    "save_checkpoint", "load_checkpoint", "resume", "Checkpoint", "read_metrics", "RunStore",
    "RustorchToolsError", "InvalidNameError", "RunNotFoundError", "CorruptCheckpointError",
]
