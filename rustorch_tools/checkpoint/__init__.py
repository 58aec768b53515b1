"""Versioned, atomic, self-verifying checkpoints (docs/checkpoints.md).

Three modules: `fileformat` (the safetensors file with its SHA-256 tail), `codec` (state tree
<-> JSON + tensors, RNG states) and `runs` (saving into a run's checkpoints/, rotation,
loading `latest` verified against what the run recorded). This package imports torch; the
store and the logging API do not import it.
"""

from .codec import capture_rng_state, restore_rng_state
from .fileformat import (
    FORMAT_VERSION,
    SUFFIX,
    Checkpoint,
    SavedCheckpoint,
    read_checkpoint_file,
    read_header,
    write_checkpoint_file,
)
from .runs import (
    DEFAULT_KEEP_LAST,
    CheckpointMismatchError,
    list_checkpoints,
    load_checkpoint,
    resolve,
    resume,
    save_checkpoint,
)

__all__ = [
    "Checkpoint", "SavedCheckpoint", "CheckpointMismatchError", "save_checkpoint",
    "load_checkpoint", "resume", "read_checkpoint_file", "read_header", "write_checkpoint_file",
    "list_checkpoints", "resolve", "capture_rng_state", "restore_rng_state", "FORMAT_VERSION",
    "SUFFIX", "DEFAULT_KEEP_LAST",
]
