"""Versioned, atomic, self-verifying checkpoints (docs/checkpoints.md).

A checkpoint is one standard safetensors file: every tensor of the state (model, optimizer,
scheduler, scaler, RNG states, extra) plus a JSON description of the rest of the structure in
the header's `__metadata__["rustorch_checkpoint"]`, and as the last 32 bytes a `U8[32]` tensor
`__rustorch_sha256__` = SHA-256 of every byte before it. Loading never unpickles: tensors are
rebuilt from raw bytes, everything else from JSON. Format 0 (legacy) is a `torch.save` dict,
read only through `torch.load(weights_only=True)` and migrated in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import pickle
import random
import re
import struct
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    NotSerializableError,
    UnsupportedCheckpointVersion,
)
from .store import atomic, layout, manifest, runs

FORMAT_VERSION = 1
SUFFIX = ".safetensors"
META_KEY = "rustorch_checkpoint"
DIGEST_KEY = "__rustorch_sha256__"
DEFAULT_KEEP_LAST = 3
_NAME_RE = re.compile(r"ckpt-.+\.(safetensors|pt)")
_MAX_HEADER = 256 << 20
_STATE_PARTS = ("model", "optimizer", "scheduler", "scaler")

# safetensors dtype names; anything else is stored as raw bytes (U8) plus its real dtype.
_ST_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL", torch.complex64: "C64",
    torch.uint64: "U64", torch.uint32: "U32", torch.uint16: "U16",
}
for _attr, _code in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _attr):
        _ST_DTYPES[getattr(torch, _attr)] = _code
_FROM_ST = {code: dtype for dtype, code in _ST_DTYPES.items()}
_DTYPE_BY_NAME = {str(d).removeprefix("torch."): d for d in vars(torch).values() if isinstance(d, torch.dtype)}


@dataclass
class Checkpoint:
    """A loaded checkpoint: state dicts, counters, RNG states and where it came from."""

    path: Path
    format_version: int
    step: int | None = None
    epoch: int | None = None
    created_at: float | None = None
    model: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    extra: Any = None
    rng: dict[str, Any] | None = None
    sha256: str | None = None
    migrated_from: int | None = None


@dataclass(frozen=True)
class SavedCheckpoint:
    """What save_checkpoint wrote: the file, its whole-file SHA-256 and size."""

    path: Path
    sha256: str
    size: int
    step: int | None
    removed: tuple[Path, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# state tree <-> (JSON, tensors)


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.real_dtype: dict[str, torch.dtype] = {}
        self._seen: dict[tuple[Any, ...], str] = {}

    def _key(self, path: str) -> str:
        key, n = path, 1
        while key in self.tensors or key == DIGEST_KEY:
            n += 1
            key = f"{path}#{n}"
        return key

    def tensor(self, t: torch.Tensor, path: str) -> dict[str, Any]:
        if t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
            raise NotSerializableError(f"{path}: {t.layout} / quantized / meta tensors are not supported")
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype, str(t.device))
        node: dict[str, Any] = {}
        if t.device.type != "cpu":
            node["device"] = str(t.device)
        if ident in self._seen and t.numel() > 0:
            node["$tensor"] = self._seen[ident]  # the same tensor twice (tied weights): stored once
            return node
        key = self._key(path)
        data = t.detach()
        if data.device.type != "cpu":
            data = data.cpu()
        data = data.contiguous()
        if data.dtype not in _ST_DTYPES:
            self.real_dtype[key] = data.dtype
            node["dtype"] = str(data.dtype).removeprefix("torch.")
            node["shape"] = list(data.shape)
        self.tensors[key] = data
        self._seen[ident] = key
        node["$tensor"] = key
        return node

    def encode(self, obj: Any, path: str) -> Any:
        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"$float": repr(float(obj))}
        if isinstance(obj, torch.Tensor):
            return self.tensor(obj, path)
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise NotSerializableError(f"{path}: numpy object arrays cannot be stored")
            flat = np.ascontiguousarray(obj).reshape(-1).view(np.uint8)
            node = self.tensor(torch.from_numpy(flat.copy()), path)
            return {"$ndarray": {"dtype": obj.dtype.str, "shape": list(obj.shape), "data": node}}
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), path)
        if isinstance(obj, torch.Size):
            return {"$tuple": [int(x) for x in obj]}
        if isinstance(obj, tuple):
            return {"$tuple": [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in obj):
                return {k: self.encode(v, f"{path}/{k}") for k, v in obj.items()}
            return {"$dict": [[self.encode(k, f"{path}/<key>"), self.encode(v, f"{path}/{k}")] for k, v in obj.items()]}
        if isinstance(obj, bytes):
            return {"$bytes": base64.b64encode(obj).decode()}
        if isinstance(obj, torch.dtype):
            return {"$dtype": str(obj).removeprefix("torch.")}
        if isinstance(obj, torch.device):
            return {"$device": str(obj)}
        raise NotSerializableError(
            f"{path}: a {type(obj).__name__} cannot be stored in a checkpoint (only tensors, numpy "
            "arrays, None, bool, int, float, str, bytes, list, tuple, dict, torch.dtype/device)"
        )


def _decode(obj: Any, tensors: dict[str, torch.Tensor], location: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, location) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        t = tensors[obj["$tensor"]]
        if "dtype" in obj:
            t = t.view(_DTYPE_BY_NAME[obj["dtype"]]).reshape(obj["shape"])
        target = _target_device(obj.get("device", "cpu"), location)
        return t if target == "cpu" else t.to(target)
    if "$tuple" in obj:
        return tuple(_decode(v, tensors, location) for v in obj["$tuple"])
    if "$dict" in obj:
        return {_decode(k, tensors, location): _decode(v, tensors, location) for k, v in obj["$dict"]}
    if "$float" in obj:
        return float(obj["$float"])
    if "$ndarray" in obj:
        spec = obj["$ndarray"]
        raw = _decode(spec["data"], tensors, "cpu")
        return raw.numpy().view(np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()
    if "$bytes" in obj:
        return base64.b64decode(obj["$bytes"])
    if "$dtype" in obj:
        return _DTYPE_BY_NAME[obj["$dtype"]]
    if "$device" in obj:
        return torch.device(obj["$device"])
    return {k: _decode(v, tensors, location) for k, v in obj.items()}


def _target_device(saved: str, location: Any) -> Any:
    if location is None:
        return saved
    if isinstance(location, dict):
        return location.get(saved, saved)
    return str(location) if isinstance(location, torch.device) else location


# --------------------------------------------------------------------------------------------
# RNG states


def capture_rng_state() -> dict[str, Any]:
    """Every RNG state a training loop usually draws from: python, numpy, torch CPU, the
    accelerator's (rustorch via torch.rustorch.get_rng_state, CUDA when available)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch_cpu": torch.get_rng_state(),
    }
    device_module = getattr(torch, "rustorch", None)
    if device_module is not None and hasattr(device_module, "get_rng_state"):
        state["rustorch"] = device_module.get_rng_state()
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of capture_rng_state; a saved device state without the device here warns."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        np.random.set_state(tuple(state["numpy"]))
    if "torch_cpu" in state:
        torch.set_rng_state(state["torch_cpu"])
    if "rustorch" in state:
        device_module = getattr(torch, "rustorch", None)
        if device_module is not None and hasattr(device_module, "set_rng_state"):
            device_module.set_rng_state(state["rustorch"])
        else:
            warnings.warn("checkpoint holds a rustorch RNG state but the device is not available", stacklevel=3)
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


# --------------------------------------------------------------------------------------------
# writing


def _state_of(obj: Any, part: str) -> Any:
    if obj is None:
        return None
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        return obj.state_dict()
    if isinstance(obj, dict):
        return obj
    raise TypeError(f"{part}= needs an object with state_dict() or a dict, got {type(obj).__name__}")


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    if t.numel() == 0:
        return memoryview(b"")
    return memoryview(t.reshape(-1).view(torch.uint8).numpy())


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_checkpoint_file(path: Path, meta: dict[str, Any], enc: _Encoder) -> tuple[str, int]:
    """Write the safetensors file atomically (temp, fsync, rename, fsync dir).

    Returns (whole-file SHA-256, size). Tensors are written from their own memory (no copy)
    and hashed on the way.
    """
    def itemsize(item: tuple[str, torch.Tensor]) -> int:
        key, t = item
        return enc.real_dtype.get(key, t.dtype).itemsize

    # Largest element size first: with an 8-aligned data start every tensor is aligned.
    ordered = sorted(enc.tensors.items(), key=itemsize, reverse=True)
    header: dict[str, Any] = {"__metadata__": {META_KEY: json.dumps(meta, separators=(",", ":"), allow_nan=False)}}
    offset = 0
    views = []
    for key, t in ordered:
        view = _tensor_bytes(t)
        if key in enc.real_dtype:
            header[key] = {"dtype": "U8", "shape": [view.nbytes], "data_offsets": [offset, offset + view.nbytes]}
        else:
            header[key] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + view.nbytes]}
        offset += view.nbytes
        views.append(view)
    header[DIGEST_KEY] = {"dtype": "U8", "shape": [32], "data_offsets": [offset, offset + 32]}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    prefix = struct.pack("<Q", len(head)) + head

    tmp = atomic.temp_path_for(path)
    digest = hashlib.sha256(prefix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, memoryview(prefix))
        for view in views:
            digest.update(view)
            _write_all(fd, view)
        inner = digest.digest()
        _write_all(fd, memoryview(inner))
        digest.update(inner)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    atomic.fsync_dir(path.parent)
    return digest.hexdigest(), len(prefix) + offset + 32


def _checkpoint_dir(target: Any) -> tuple[Path, Path | None, Any]:
    """(directory for checkpoint files, run dir or None, Run object or None)."""
    from .run import Run

    if isinstance(target, Run):
        return target.dir / layout.CHECKPOINTS, target.dir, target
    target = Path(target)
    if (target / layout.RUN_JSON).exists():
        return target / layout.CHECKPOINTS, target, None
    if target.name == layout.CHECKPOINTS and (target.parent / layout.RUN_JSON).exists():
        return target, target.parent, None
    return target, None, None


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
    and events.jsonl a `checkpointed` event.
    """
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be an int >= 0 or None, got {step!r}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 or None, got {keep_last!r}")
    enc = _Encoder()
    states: dict[str, Any] = {}
    module_meta: dict[str, Any] = {}
    for part, obj in zip(_STATE_PARTS, (model, optimizer, scheduler, scaler), strict=True):
        state = _state_of(obj, part)
        states[part] = enc.encode(state, part)
        if getattr(state, "_metadata", None) is not None:  # per-module versions of a state_dict
            module_meta[part] = enc.encode(dict(state._metadata), f"{part}_metadata")
    now = time.time()
    meta = {
        "format_version": FORMAT_VERSION,
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
        return SavedCheckpoint(path, digest, size, step)

    directory, run_dir, run = _checkpoint_dir(target)
    if name is not None:
        file_name = f"ckpt-{layout.validate_name(name, 'checkpoint name')}{SUFFIX}"
    elif step is not None:
        file_name = f"ckpt-{step:010d}{SUFFIX}"
    else:
        file_name = time.strftime("ckpt-%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:] + SUFFIX
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    lock_dir = run_dir if run_dir is not None else directory
    with runs.run_lock(lock_dir):
        digest, size = write_checkpoint_file(path, meta, enc)
        if run_dir is not None:
            manifest.add_file(run_dir, f"{layout.CHECKPOINTS}/{file_name}", sha256=digest)
        pointer = {"file": file_name, "step": step, "epoch": epoch, "sha256": digest, "saved_at": now}
        atomic.atomic_write_json(directory / layout.LATEST, pointer)
        removed = _rotate(directory, run_dir, keep_last, keep=file_name)
    if run_dir is not None:
        detail = {"file": f"{layout.CHECKPOINTS}/{file_name}", "step": step, "epoch": epoch,
                  "sha256": digest, "bytes": size}
        if removed:
            detail["removed"] = [p.name for p in removed]
        runs.append_event(run_dir, "checkpointed", detail, rank=getattr(run, "rank", None))
    return SavedCheckpoint(path, digest, size, step, tuple(removed))


def list_checkpoints(directory: Path) -> list[tuple[float, Path]]:
    """(created_at, path) of the checkpoint files in `directory`, oldest first.

    The time comes from the file's header; a file whose header cannot be read sorts by mtime.
    """
    out = []
    if not directory.is_dir():
        return out
    for entry in os.scandir(directory):
        if entry.is_file() and _NAME_RE.fullmatch(entry.name):
            path = Path(entry.path)
            try:
                created = read_header(path)[1].get("created_at") or entry.stat().st_mtime
            except (CorruptCheckpointError, UnsupportedCheckpointVersion, OSError):
                created = entry.stat().st_mtime
            out.append((float(created), path))
    out.sort(key=lambda item: (item[0], item[1].name))
    return out


def _rotate(directory: Path, run_dir: Path | None, keep_last: int | None, keep: str) -> list[Path]:
    if keep_last is None:
        return []
    found = [p for _, p in list_checkpoints(directory)]
    doomed = [p for p in found[: max(0, len(found) - keep_last)] if p.name != keep]
    for path in doomed:
        path.unlink(missing_ok=True)
    if doomed:
        atomic.fsync_dir(directory)
        if run_dir is not None:
            manifest.remove_files(run_dir, [f"{layout.CHECKPOINTS}/{p.name}" for p in doomed])
    return doomed


# --------------------------------------------------------------------------------------------
# reading


def read_header(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(safetensors header, our metadata) of a format-1 file, without reading the tensors."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise CorruptCheckpointError(str(path), "file too short to be a checkpoint")
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER:
            raise CorruptCheckpointError(str(path), "not a rustorch checkpoint (bad header length)")
        head = fh.read(n)
    return _parse_header(path, head, n)


def _parse_header(path: Path, head: bytes, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = json.loads(head)
        meta = json.loads(header["__metadata__"][META_KEY])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorruptCheckpointError(str(path), f"unreadable checkpoint header ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(str(path), "checkpoint metadata is not an object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptCheckpointError(str(path), f"format_version {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise UnsupportedCheckpointVersion(
            f"{path}: checkpoint format_version {version} is newer than this rustorch_tools "
            f"supports ({FORMAT_VERSION}); upgrade rustorch_tools to load it"
        )
    return header, meta


def _read_all(path: Path) -> bytearray:
    size = path.stat().st_size
    buf = bytearray(size)
    with open(path, "rb", buffering=0) as fh:
        view, got = memoryview(buf), 0
        while got < size:
            n = fh.readinto(view[got:])
            if not n:
                break
            got += n
    if got != size:
        raise CorruptCheckpointError(str(path), f"file shrank while reading ({got} of {size} bytes)")
    return buf


def read_checkpoint_file(path: str | os.PathLike[str], map_location: Any = None) -> Checkpoint:
    """Load and verify one checkpoint file (format 1, or legacy format 0).

    Raises CorruptCheckpointError (digest mismatch, malformed, or a pickle that is not
    plain tensors/containers), UnsupportedCheckpointVersion (a newer format).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no checkpoint file at {path}")
    buf = _read_all(path)
    if buf[:4] == b"PK\x03\x04" or buf[:1] == b"\x80":
        return _read_legacy(path, map_location)
    if len(buf) < 8 + 32:
        raise CorruptCheckpointError(str(path), "file too short to be a checkpoint")
    (n,) = struct.unpack_from("<Q", buf)
    if n > min(_MAX_HEADER, len(buf) - 8 - 32):
        raise CorruptCheckpointError(str(path), "not a rustorch checkpoint (bad header length)")
    view = memoryview(buf)
    stored = bytes(view[-32:]).hex()
    actual = hashlib.sha256(view[:-32]).hexdigest()
    if stored != actual:
        raise CorruptCheckpointError(str(path), "content does not match its SHA-256", expected=stored, actual=actual)
    header, meta = _parse_header(path, bytes(view[8 : 8 + n]), n)
    base = 8 + n
    data_len = len(buf) - base
    if header.get(DIGEST_KEY, {}).get("data_offsets") != [data_len - 32, data_len]:
        raise CorruptCheckpointError(str(path), "digest is not the last 32 bytes")
    tensors: dict[str, torch.Tensor] = {}
    for key, info in header.items():
        if key in ("__metadata__", DIGEST_KEY):
            continue
        try:
            dtype = _FROM_ST[info["dtype"]]
            begin, end = info["data_offsets"]
            shape = [int(s) for s in info["shape"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpointError(str(path), f"bad entry for tensor {key!r}: {exc}") from None
        numel = math.prod(shape)
        if not 0 <= begin <= end <= data_len - 32 or end - begin != numel * dtype.itemsize:
            raise CorruptCheckpointError(str(path), f"tensor {key!r} has inconsistent offsets")
        if numel == 0:
            tensors[key] = torch.empty(shape, dtype=dtype)
        else:
            tensors[key] = torch.frombuffer(buf, dtype=dtype, count=numel, offset=base + begin).reshape(shape)
    try:
        state = meta["state"]
        ckpt = Checkpoint(
            path=path,
            format_version=meta["format_version"],
            step=meta.get("step"),
            epoch=meta.get("epoch"),
            created_at=meta.get("created_at"),
            extra=_decode(meta.get("extra"), tensors, map_location),
            rng=_decode(meta.get("rng"), tensors, "cpu"),
            sha256=stored,
            **{part: _decode(state.get(part), tensors, map_location) for part in _STATE_PARTS},
        )
        for part, module_meta in (meta.get("state_metadata") or {}).items():
            restored = OrderedDict(getattr(ckpt, part))
            restored._metadata = _decode(module_meta, tensors, "cpu")  # type: ignore[attr-defined]
            setattr(ckpt, part, restored)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptCheckpointError(str(path), f"malformed checkpoint structure ({exc})") from None
    return ckpt


def _read_legacy(path: Path, map_location: Any) -> Checkpoint:
    """Format 0: a torch.save'd dict {model, optimizer, scheduler, scaler, step, epoch, extra, rng}.

    Read with the weights_only unpickler, which refuses any global outside torch's allow-list.
    """
    location = map_location if map_location is not None else "cpu"
    try:
        obj = torch.load(path, map_location=location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        raise CorruptCheckpointError(
            str(path), f"refused to load: not a safe checkpoint (weights_only unpickler: {str(exc)[:300]})"
        ) from None
    if not isinstance(obj, dict):
        raise CorruptCheckpointError(str(path), f"legacy checkpoint holds a {type(obj).__name__}, not a dict")
    version = obj.get("format_version", 0)
    if version != 0:
        raise UnsupportedCheckpointVersion(f"{path}: a torch.save file with format_version {version!r}; only 0 is known")
    return Checkpoint(
        path=path,
        format_version=0,
        migrated_from=0,
        step=obj.get("step"),
        epoch=obj.get("epoch"),
        created_at=obj.get("created_at"),
        extra=obj.get("extra"),
        rng=obj.get("rng"),
        **{part: obj.get(part) for part in _STATE_PARTS},
    )


def resolve(source: Any) -> Path:
    """The checkpoint file a source names: a file as is; a Run, run dir or checkpoint dir →
    the file `latest` points to (CheckpointNotFoundError when there is none)."""
    from .run import Run

    if not isinstance(source, Run) and Path(source).is_file():
        return Path(source)
    directory, _, _ = _checkpoint_dir(source)
    pointer = directory / layout.LATEST
    try:
        name = json.loads(pointer.read_text())["file"]
        layout.validate_name(name, "checkpoint file")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint in {directory} (no {layout.LATEST} pointer)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptCheckpointError(str(pointer), f"unreadable pointer ({exc})") from None
    return directory / name


def _load_latest(source: Any, map_location: Any) -> Checkpoint:
    """The checkpoint `latest` names; if it (or the pointer) is damaged, the newest intact one."""
    try:
        return read_checkpoint_file(resolve(source), map_location)
    except (CorruptCheckpointError, CheckpointNotFoundError) as first:
        directory, _, _ = _checkpoint_dir(source)
        for _, path in reversed(list_checkpoints(directory)):
            try:
                ckpt = read_checkpoint_file(path, map_location)
            except CorruptCheckpointError:
                continue
            warnings.warn(f"{first}; loaded the newest intact checkpoint {path.name} instead", stacklevel=3)
            return ckpt
        raise first


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
) -> Checkpoint:
    """Load a checkpoint and put its state into the given objects.

    `source`: a file, or a Run / run dir / checkpoint dir (→ `latest`, or the newest intact
    checkpoint with a warning if `latest` is damaged). `map_location`: None (each tensor
    back on its saved device), a device ("cpu", "rustorch") or a {saved: new} dict. Restores
    the RNG states last, so that the next random draw is the one the saved run would make.
    """
    if isinstance(source, str | os.PathLike) and Path(source).is_file():
        ckpt = read_checkpoint_file(source, map_location)
    else:
        ckpt = _load_latest(source, map_location)
    for part, obj in zip(_STATE_PARTS, (model, optimizer, scheduler, scaler), strict=True):
        if obj is None:
            continue
        state = getattr(ckpt, part)
        if state is None:
            raise CorruptCheckpointError(str(ckpt.path), f"checkpoint has no {part} state to load")
        if part == "model":
            obj.load_state_dict(state, strict=strict)
        else:
            obj.load_state_dict(state)
    if restore_rng and ckpt.rng:
        restore_rng_state(ckpt.rng)
    return ckpt


def resume(run: Any, **kwargs: Any) -> Checkpoint:
    """load_checkpoint of the run's latest checkpoint; a live Run also gets a `resumed` event."""
    from .run import Run

    ckpt = load_checkpoint(run, **kwargs)
    if isinstance(run, Run):
        rel = ckpt.path.relative_to(run.dir).as_posix() if ckpt.path.is_relative_to(run.dir) else str(ckpt.path)
        run.log_event("resumed", {"checkpoint": rel, "step": ckpt.step, "epoch": ckpt.epoch})
    return ckpt


__all__ = [
    "Checkpoint", "SavedCheckpoint", "save_checkpoint", "load_checkpoint", "resume",
    "read_checkpoint_file", "capture_rng_state", "restore_rng_state", "FORMAT_VERSION",
]
