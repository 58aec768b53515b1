"""What an entry point writes into its run so that `replay` can re-execute it.

An entry point (a training script, the config-driven trainer) calls `record_entry_point` once,
after seeding and after `start_run`, before training:

    with rustorch_tools.start_run(root=..., config=cfg, seed=seed) as run:
        repro.record_entry_point(run, script=__file__, argv=argv, data_files=files,
                                 device=device)

It writes the artifact `artifacts/replay.json` (format in docs/reproducibility.md): the entry
point and its argument vector, code identity, environment lock, digests of the data files,
seed and RNG states, thread counts, device and which metrics are timing-dependent.

The call switches on `torch.use_deterministic_algorithms` (original and replay run the same
kernels). Under `replay` (environment variable RUSTORCH_REPLAY, set by the replay driver) it
first applies the recorded thread count and deterministic setting, tags the run
`replay_of=<original run id>` and tells the driver the new run's id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import random
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..store import atomic
from . import identity

ARTIFACT = "replay.json"
FORMAT = "rustorch-replay-record"
VERSION = 1
ENV_VAR = "RUSTORCH_REPLAY"
# Metrics that measure time (or rates) differ from run to run by nature; replay reports them
# as skipped instead of comparing them. fnmatch patterns; an entry point may add its own.
DEFAULT_VOLATILE = ("*seconds*", "*_time", "*time_s", "*per_s", "*samples_s*", "*throughput*",
                    "device/step_time*")


def replay_settings() -> dict[str, Any] | None:
    """The driver's settings when this process is a replay, else None."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return None
    settings = json.loads(raw)
    if not isinstance(settings, dict):
        raise ValueError(f"{ENV_VAR} must hold a JSON object")
    return settings


def _apply(settings: dict[str, Any]) -> None:
    import torch

    threads = settings.get("threads")
    if isinstance(threads, int) and threads > 0:
        torch.set_num_threads(threads)


def set_deterministic(mode: bool) -> None:
    """`torch.use_deterministic_algorithms(mode)` without importing inductor when the process
    has not: the public function imports torch._inductor (seconds) only to copy the flag
    into inductor's config, which reads TORCHINDUCTOR_DETERMINISTIC when first imported."""
    import torch

    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode)
        return
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1" if mode else "0"
    torch._C._set_deterministic_algorithms(mode)


def _digest(obj: Any) -> str:
    return hashlib.sha256(pickle.dumps(obj, protocol=4)).hexdigest()


def rng_states(device: str | None) -> dict[str, Any]:
    """Full CPU generator state (base64) and digests of the numpy, Python and device states."""
    import torch

    out: dict[str, Any] = {
        "torch_cpu": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
        "python_sha256": _digest(random.getstate()),
    }
    np = sys.modules.get("numpy")
    if np is not None:
        out["numpy_sha256"] = _digest(np.random.get_state())
    dev_type = torch.device(device).type if device else None
    if dev_type not in (None, "cpu", "meta"):
        try:
            module = torch.get_device_module(dev_type)
            state = module.get_rng_state()
        except (AttributeError, RuntimeError):  # a backend without a generator API
            state = None
        if state is not None:
            out["device_sha256"] = hashlib.sha256(state.cpu().numpy().tobytes()).hexdigest()
    return out


def _data_entry(path: Path, root: Path) -> dict[str, Any]:
    resolved = path.resolve()
    entry: dict[str, Any] = {"path": str(resolved), "sha256": identity.sha256_file(resolved),
                             "size": resolved.stat().st_size}
    try:
        entry["relpath"] = resolved.relative_to(root).as_posix()
    except ValueError:
        pass
    return entry


def build_record(
    *,
    entry: dict[str, Any],
    seed: int | None,
    data_files: Iterable[str | os.PathLike[str]],
    device: str | None,
    volatile: Sequence[str] = (),
    extra_sources: Sequence[Path] = (),
) -> dict[str, Any]:
    import torch

    root = identity.code_root()
    return {
        "format": FORMAT,
        "version": VERSION,
        "entry": entry,
        "code": identity.code_identity(root, list(extra_sources)),
        "environment": identity.environment_lock(),
        "data": [_data_entry(Path(p), root) for p in data_files],
        "seed": seed,
        "rng": rng_states(device),
        "runtime": {
            "device": device,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
        },
        "volatile_metrics": sorted(set(DEFAULT_VOLATILE) | set(volatile)),
    }


def record_entry_point(
    run: Any,
    *,
    script: str | os.PathLike[str] | None = None,
    module: str | None = None,
    argv: Sequence[str],
    runs_dir_option: str = "--runs-dir",
    data_files: Iterable[str | os.PathLike[str]] = (),
    device: Any = None,
    volatile: Sequence[str] = (),
    deterministic: bool = True,
) -> dict[str, Any]:
    """Write artifacts/replay.json into `run` (a `rustorch_tools.Run`); returns the record.

    Exactly one of `script` (a file run as `python SCRIPT ARGV...`) or `module` (run as
    `python -m MODULE ARGV...`) names the entry point. `runs_dir_option` is the option of
    ARGV that says where runs go (replay points it at its own RUNS_DIR).
    `deterministic` switches `torch.use_deterministic_algorithms` for the rest of the
    process, in the original as in its replays, so that both run the same kernels (it also
    makes torch fill uninitialized memory, which shows in op counters).
    """

    if (script is None) == (module is None):
        raise ValueError("give exactly one of script= or module=")
    settings = replay_settings()
    if settings is not None:
        _apply(settings)
        deterministic = bool(settings.get("deterministic", deterministic))
    set_deterministic(deterministic)
    root = identity.code_root()
    entry: dict[str, Any] = {"argv": list(argv), "runs_dir_option": runs_dir_option}
    sources: list[Path] = []
    if script is not None:
        path = Path(script).resolve()
        sources.append(path)
        entry["kind"] = "script"
        try:
            entry["script"] = path.relative_to(root).as_posix()
        except ValueError:
            entry["script"] = str(path)
    else:
        entry["kind"] = "module"
        entry["module"] = module
    record = build_record(entry=entry, seed=_run_seed(run),
                          data_files=data_files, device=None if device is None else str(device),
                          volatile=volatile, extra_sources=sources)
    with tempfile.TemporaryDirectory(prefix="rustorch-replay-") as tmp:
        path = Path(tmp) / ARTIFACT
        path.write_bytes(json.dumps(record, indent=1, sort_keys=True).encode() + b"\n")
        run.log_artifact(path, name=ARTIFACT, overwrite=True)
    if settings is not None:
        if settings.get("of"):
            run.set_tags({"replay_of": str(settings["of"])})
        if settings.get("run_id_file"):
            atomic.write_output(settings["run_id_file"], run.run_id.encode())
    return record


def _run_seed(run: Any) -> int | None:
    try:
        return run.read().get("seed")
    except AttributeError:
        return None
