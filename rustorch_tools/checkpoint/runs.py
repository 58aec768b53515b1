"""Checkpoints of a run: save into checkpoints/, rotate, load `latest` with verification.

Everything under RUNS_DIR goes through the store (`RunFiles`): the checkpoints/ folder (a
link is refused), the manifest entry, the `latest` pointer and rotation. Loading from a run
checks the file against the digest the run recorded (manifest.json and `latest`: BLAKE3 when
recorded, else SHA-256), not only the digests inside the file, so a checkpoint swapped for
another valid one is refused.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    RustorchToolsError,
    UnsupportedCheckpointVersion,
)
from ..store import atomic, layout
from ..store.runstore import (
    RunFiles,
    checkpoint_folder_lock,
    find_run,
    latest_pointer_path,
    read_pointer,
    write_latest_pointer,
)
from . import fileformat
from .codec import _Encoder, capture_rng_state, restore_rng_state
from .digests import BLAKE3, SHA256
from .fileformat import (
    STATE_PARTS,
    SUFFIX,
    Checkpoint,
    SavedCheckpoint,
    _state_of,
    read_checkpoint_file,
    read_header,
    write_checkpoint_file,
)

DEFAULT_KEEP_LAST = 3
_NAME_RE = re.compile(r"ckpt-.+\.(safetensors|pt)")


def _run_files(target: Any) -> RunFiles | None:
    """The run a target names: a Run (anything with a RunFiles `files`), a run folder, or its
    checkpoints/ folder; None for a plain directory."""
    files = getattr(target, "files", None)
    if isinstance(files, RunFiles):
        return files
    if isinstance(target, RunFiles):
        return target
    return find_run(target)


def _checkpoint_dir(target: Any, create: bool) -> tuple[Path, RunFiles | None]:
    files = _run_files(target)
    if files is not None:
        return files.checkpoints_dir(create=create), files
    directory = Path(target)
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    return directory, None


def save_checkpoint(
    target: Any,
    *,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
    step: int | None = None,
    epoch: int | None = None,
    extra: Any = None,
    rng: bool = True,
    keep_last: int | None = DEFAULT_KEEP_LAST,
    name: str | None = None,
) -> SavedCheckpoint:
    """Save a checkpoint into `target` and return what was written.

    `target`: a Run, a run directory, a plain directory (created), or a file path ending in
    `.safetensors` (written atomically; no rotation or `latest`). `model` etc. are objects
    with state_dict() or dicts. In a directory the file is `ckpt-<step:010d>.safetensors`
    (or `ckpt-<name>`), `latest` is replaced atomically, and only the newest `keep_last`
    checkpoints are kept (None keeps all). In a run, manifest.json gets the file's SHA-256
    and BLAKE3 and events.jsonl a `checkpointed` event; a checkpoints/ that is a link is
    refused.
    """
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be an int >= 0 or None, got {step!r}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 or None, got {keep_last!r}")
    enc = _Encoder()
    states: dict[str, Any] = {}
    module_meta: dict[str, Any] = {}
    for part, obj in zip(STATE_PARTS, (model, optimizer, scheduler, scaler), strict=True):
        state = _state_of(obj, part)
        states[part] = enc.encode(state, part)
        if getattr(state, "_metadata", None) is not None:  # per-module versions of a state_dict
            module_meta[part] = enc.encode(dict(state._metadata), f"{part}_metadata")
    now = time.time()
    meta = {
        "format_version": fileformat.FORMAT_VERSION,
        "created_at": now,
        "step": step,
        "epoch": epoch,
        "state": states,
        "state_metadata": module_meta,
        "extra": enc.encode(extra, "extra"),
        "rng": enc.encode(capture_rng_state(), "rng") if rng else None,
        "torch": torch.__version__,
    }
    if isinstance(target, str | os.PathLike) and str(target).endswith(SUFFIX):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = write_checkpoint_file(path, meta, enc)
        return SavedCheckpoint(path, digest[SHA256], size, step, blake3=digest[BLAKE3])

    if name is not None:
        file_name = f"ckpt-{layout.validate_name(name, 'checkpoint name')}{SUFFIX}"
    elif step is not None:
        file_name = f"ckpt-{step:010d}{SUFFIX}"
    else:
        file_name = time.strftime("ckpt-%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:] + SUFFIX
    directory, files = _checkpoint_dir(target, create=True)
    path = directory / file_name
    pointer = {"file": file_name, "step": step, "epoch": epoch, "saved_at": now}
    with files.lock() if files is not None else checkpoint_folder_lock(directory):
        digest, size = write_checkpoint_file(path, meta, enc)
        pointer.update(digest)
        if files is not None:
            files.add_manifest_file(files.checkpoint_relpath(file_name), sha256=digest[SHA256],
                                    blake3=digest[BLAKE3])
            files.write_latest(pointer)
        else:
            write_latest_pointer(directory, pointer)
        removed = _rotate(directory, files, keep_last, keep=file_name)
    if files is not None:
        detail = {"file": f"{layout.CHECKPOINTS}/{file_name}", "step": step, "epoch": epoch,
                  **digest, "bytes": size}
        if removed:
            detail["removed"] = [p.name for p in removed]
        files.append_event("checkpointed", detail, rank=getattr(target, "rank", None))
    return SavedCheckpoint(path, digest[SHA256], size, step, tuple(removed), blake3=digest[BLAKE3])


def list_checkpoints(directory: Path) -> list[tuple[float, Path]]:
    """(created_at, path) of the checkpoint files in `directory`, oldest first.

    The time comes from the file's header; a file whose header cannot be read sorts by mtime.
    """
    out: list[tuple[float, Path]] = []
    if directory.is_symlink() or not directory.is_dir():
        return out
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False) and _NAME_RE.fullmatch(entry.name):
            path = Path(entry.path)
            try:
                created = read_header(path)[1].get("created_at") or entry.stat().st_mtime
                created = float(created)
            except (CorruptCheckpointError, UnsupportedCheckpointVersion, OSError, TypeError,
                    ValueError, OverflowError):
                created = entry.stat().st_mtime
            out.append((created, path))
    out.sort(key=lambda item: (item[0], item[1].name))
    return out


def _rotate(directory: Path, files: RunFiles | None, keep_last: int | None, keep: str) -> list[Path]:
    if keep_last is None:
        return []
    found = [p for _, p in list_checkpoints(directory)]
    doomed = [p for p in found[: max(0, len(found) - keep_last)] if p.name != keep]
    if files is not None:
        files.remove_checkpoints(doomed)
    else:
        for path in doomed:
            path.unlink(missing_ok=True)
        if doomed:
            atomic.fsync_dir(directory)
    return doomed


def resolve(source: Any) -> Path:
    """The checkpoint file a source names: a file as is; a Run, run dir or checkpoint dir →
    the file `latest` points to (CheckpointNotFoundError when there is none)."""
    if _run_files(source) is None and not isinstance(source, RunFiles) and Path(source).is_file():
        return Path(source)
    directory, _ = _checkpoint_dir(source, create=False)
    return directory / _pointer(latest_pointer_path(directory))["file"]


def _pointer(pointer: Path) -> dict[str, Any]:
    try:
        doc = read_pointer(pointer)
        layout.validate_name(doc["file"], "checkpoint file")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint in {pointer.parent} (no {layout.LATEST} pointer)") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError, RustorchToolsError) as exc:
        raise CorruptCheckpointError(str(pointer), f"unreadable pointer ({exc})") from None
    return doc


def _recorded_digests(files: RunFiles, path: Path, pointer: dict[str, Any] | None) -> dict[str, str]:
    """The whole-file digests the run recorded for checkpoint `path` (manifest.json: SHA-256,
    and BLAKE3 since format 2; cross-checked with `latest`); CorruptCheckpointError when it
    recorded none, or only an unverified one (an entry rebuilt by repair from whatever file
    was there)."""
    try:
        entry = files.read_manifest().get("files", {}).get(f"{layout.CHECKPOINTS}/{path.name}")
    except (RustorchToolsError, OSError, ValueError, RecursionError) as exc:
        raise CorruptCheckpointError(str(path), f"manifest.json unreadable ({exc})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get(SHA256), str):
        raise CorruptCheckpointError(str(path), "not recorded in the run's manifest.json")
    if entry.get("verified") is False:
        raise CorruptCheckpointError(str(path), "recorded in manifest.json only as unverified "
                                     "(rebuilt after a crash); not trusted")
    recorded = {a: entry[a] for a in (SHA256, BLAKE3) if isinstance(entry.get(a), str)}
    for algo in (SHA256, BLAKE3):
        if pointer is not None and pointer.get(algo) not in (None, recorded.get(algo)):
            raise CorruptCheckpointError(str(path), f"latest records another {algo} than "
                                         "manifest.json", expected=recorded.get(algo),
                                         actual=str(pointer.get(algo)), algorithm=algo)
    return recorded


def _read_verified(path: Path, files: RunFiles | None, pointer: dict[str, Any] | None,
                   map_location: Any, verify: str) -> Checkpoint:
    """read_checkpoint_file; in a run, against the whole-file digests manifest.json and
    `latest` recorded: a file swapped for another valid checkpoint, or re-hashed, is refused.
    In a plain folder, the file `latest` names is held to the digests `latest` recorded."""
    if files is None:
        recorded = {a: pointer[a] for a in (SHA256, BLAKE3) if isinstance((pointer or {}).get(a), str)}
        return read_checkpoint_file(path, map_location, verify=verify, expected=recorded or None)
    expected = _recorded_digests(files, path, pointer)
    return read_checkpoint_file(path, map_location, verify=verify, expected=expected)


_FALLBACK_ERRORS = (CorruptCheckpointError, CheckpointNotFoundError, UnsupportedCheckpointVersion)


def _load_latest(source: Any, map_location: Any, verify: str) -> Checkpoint:
    """The checkpoint `latest` names, verified against what the run recorded; if it (or the
    pointer) is damaged, the newest intact recorded one, with a warning."""
    directory, files = _checkpoint_dir(source, create=False)
    pointer: dict[str, Any] | None = None
    try:
        pointer = _pointer(latest_pointer_path(directory))
        return _read_verified(directory / pointer["file"], files, pointer, map_location, verify)
    except _FALLBACK_ERRORS as first:
        for _, path in reversed(list_checkpoints(directory)):
            if pointer is not None and path.name == pointer.get("file"):
                continue
            try:
                ckpt = _read_verified(path, files, None, map_location, verify)
            except _FALLBACK_ERRORS:
                continue
            warnings.warn(f"{first}; loaded the newest intact checkpoint {path.name} instead", stacklevel=3)
            return ckpt
        raise first


class CheckpointMismatchError(CorruptCheckpointError, RuntimeError):
    """The checkpoint does not fit the objects to load it into (keys or shapes); nothing was
    changed."""


def _check_fits(ckpt: Checkpoint, model: Any, strict: bool) -> None:
    """Refuse before loading anything when the model state does not fit (all or nothing)."""
    state = ckpt.model
    if model is None or state is None or not hasattr(model, "state_dict"):
        return
    own = model.state_dict()
    problems = []
    for key, value in state.items():
        mine = own.get(key)
        if mine is None:
            if strict:
                problems.append(f"unexpected key {key!r}")
            continue
        shape = getattr(value, "shape", None)
        if shape is not None and hasattr(mine, "shape") and tuple(shape) != tuple(mine.shape):
            problems.append(f"{key}: checkpoint shape {tuple(shape)}, model {tuple(mine.shape)}")
    if strict:
        problems += [f"missing key {k!r}" for k in own if k not in state]
    if problems:
        raise CheckpointMismatchError(str(ckpt.path), "does not fit the model, nothing loaded: "
                                      + "; ".join(problems[:10]))


def load_checkpoint(
    source: Any,
    *,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
    map_location: Any = None,
    restore_rng: bool = True,
    strict: bool = True,
    verify: str = "fast",
) -> Checkpoint:
    """Load a checkpoint and put its state into the given objects.

    `source`: a file, or a Run / run dir / checkpoint dir (→ `latest`, verified against the
    digest the run recorded in manifest.json and `latest`; if that fails, the newest intact
    recorded checkpoint with a warning). `verify`: "fast" checks one cryptographic digest,
    BLAKE3 where recorded (format 2), else SHA-256; "full" checks SHA-256 too (every digest
    the file and the run hold). `map_location`: None (each tensor back on its saved
    device), a device ("cpu", "rustorch") or a {saved: new} dict. A model whose keys or
    shapes do not match is left unchanged (CheckpointMismatchError). Restores the RNG states
    last, so that the next random draw is the one the saved run would make.
    """
    fileformat._check_verify(verify)
    if _run_files(source) is None and isinstance(source, str | os.PathLike) and Path(source).is_file():
        path = Path(source)
        files = _run_files(path.parent) if path.parent.name == layout.CHECKPOINTS else None
        ckpt = _read_verified(path, files, None, map_location, verify)
    else:
        ckpt = _load_latest(source, map_location, verify)
    parts = dict(zip(STATE_PARTS, (model, optimizer, scheduler, scaler), strict=True))
    for part, obj in parts.items():
        if obj is not None and getattr(ckpt, part) is None:
            raise CorruptCheckpointError(str(ckpt.path), f"checkpoint has no {part} state to load")
    _check_fits(ckpt, model, strict)
    for part, obj in parts.items():
        if obj is None:
            continue
        state = getattr(ckpt, part)
        if part == "model":
            obj.load_state_dict(state, strict=strict)
        else:
            obj.load_state_dict(state)
    if restore_rng and ckpt.rng:
        restore_rng_state(ckpt.rng)
    return ckpt


def resume(run: Any, **kwargs: Any) -> Checkpoint:
    """load_checkpoint of the run's latest checkpoint. A live Run also gets a `resumed` event
    and continues logging after the checkpoint's step (`Run.rewind`: repeated steps are a
    documented resume, not a step descent)."""
    ckpt = load_checkpoint(run, **kwargs)
    files = getattr(run, "files", None)
    if isinstance(files, RunFiles):
        rel = ckpt.path.relative_to(files.dir).as_posix() if ckpt.path.is_relative_to(files.dir) else str(ckpt.path)
        run.log_event("resumed", {"checkpoint": rel, "step": ckpt.step, "epoch": ckpt.epoch})
        if ckpt.step is not None and hasattr(run, "rewind") and not getattr(run, "closed", True):
            run.rewind(ckpt.step, checkpoint=ckpt.path.name)
    return ckpt
