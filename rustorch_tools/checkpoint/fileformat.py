"""The checkpoint file format (docs/checkpoints.md): one safetensors file.

Every tensor of the state plus a JSON description of the rest in the header's
`__metadata__["rustorch_checkpoint"]`, and as the last 32 bytes a `U8[32]` tensor
`__rustorch_sha256__` = SHA-256 of every byte before it. Loading never unpickles. Format 0
(legacy) is a `torch.save` dict, read only through `torch.load(weights_only=True)`.
Every malformed header (float offsets, negative or huge shapes, deep nesting) raises
CorruptCheckpointError.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import pickle
import struct
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointNotFoundError, CorruptCheckpointError, UnsupportedCheckpointVersion
from ..store import atomic
from .codec import _FROM_ST, _ST_DTYPES, DIGEST_KEY, _Encoder, decode_tree

FORMAT_VERSION = 1
SUFFIX = ".safetensors"
META_KEY = "rustorch_checkpoint"
_MAX_HEADER = 256 << 20
STATE_PARTS = ("model", "optimizer", "scheduler", "scaler")


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
    file_sha256: str | None = None  # SHA-256 of the whole file (what manifest.json records)


@dataclass(frozen=True)
class SavedCheckpoint:
    """What save_checkpoint wrote: the file, its whole-file SHA-256 and size."""

    path: Path
    sha256: str
    size: int
    step: int | None
    removed: tuple[Path, ...] = field(default=())


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


_CHUNK = 8 << 20
_PARALLEL_MIN = 16 << 20


def _chunks(views: list[memoryview]) -> list[memoryview]:
    return [v[i : i + _CHUNK] for v in views for i in range(0, v.nbytes, _CHUNK)]


def _hash_and_write(fd: int, digest: Any, views: list[memoryview]) -> None:
    """Write `views` to `fd` and feed them to `digest`, in order.

    For large states a helper thread hashes chunk i while this thread writes it (both release
    the GIL), so the SHA-256 costs little extra wall time where a second core is free, and
    the bulk fsync overlaps the end of the hashing.
    """
    if sum(v.nbytes for v in views) < _PARALLEL_MIN:
        for view in views:
            digest.update(view)
            _write_all(fd, view)
        return
    chunks = _chunks(views)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckpt-sha256") as pool:
        hashed = [pool.submit(digest.update, chunk) for chunk in chunks]  # one worker: in order
        for chunk in chunks:
            _write_all(fd, chunk)
        # Flush the bulk to disk while the hash finishes; the caller's final fsync after the
        # digest is written then has only the last bytes to flush.
        os.fsync(fd)
        for future in hashed:
            future.result()


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
        _hash_and_write(fd, digest, views)
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
        if not isinstance(header, dict):
            raise TypeError("header is not an object")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, RecursionError,
            ValueError) as exc:
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


def _map_file(path: Path) -> mmap.mmap | bytearray:
    """The file's bytes as a private (copy-on-write) mapping: tensors are built on it without
    copying, and stay valid after the file is unlinked or replaced (rotation, atomic rename)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return bytearray()
        return mmap.mmap(fh.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)


def _looks_like_safetensors(buf: Any) -> bool:
    # The header length's first byte can be 0x80 (a pickle's first byte): look at the JSON too.
    if len(buf) < 9:
        return False
    (n,) = struct.unpack_from("<Q", buf)
    return n <= len(buf) - 8 and buf[8:9] == b"{"


def read_checkpoint_file(path: str | os.PathLike[str], map_location: Any = None) -> Checkpoint:
    """Load and verify one checkpoint file (format 1, or legacy format 0).

    Raises CorruptCheckpointError (digest mismatch, malformed, or a pickle that is not
    plain tensors/containers), UnsupportedCheckpointVersion (a newer format).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no checkpoint file at {path}")
    buf = _map_file(path)
    if not _looks_like_safetensors(buf) and (buf[:4] == b"PK\x03\x04" or buf[:1] == b"\x80"):
        return _read_legacy(path, map_location)  # a torch.save zip or a raw pickle
    if len(buf) < 8 + 32:
        raise CorruptCheckpointError(str(path), "file too short to be a checkpoint")
    (n,) = struct.unpack_from("<Q", buf)
    if n > min(_MAX_HEADER, len(buf) - 8 - 32):
        raise CorruptCheckpointError(str(path), "not a rustorch checkpoint (bad header length)")
    view = memoryview(buf)
    stored = bytes(view[-32:]).hex()
    hasher = hashlib.sha256(view[:-32])
    actual = hasher.hexdigest()
    if stored != actual:
        raise CorruptCheckpointError(str(path), "content does not match its SHA-256", expected=stored, actual=actual)
    hasher.update(view[-32:])
    whole = hasher.hexdigest()  # the digest manifest.json and `latest` record
    header, meta = _parse_header(path, bytes(view[8 : 8 + n]), n)
    base = 8 + n
    data_len = len(buf) - base
    digest_entry = header.get(DIGEST_KEY)
    if not isinstance(digest_entry, dict) or digest_entry.get("data_offsets") != [data_len - 32, data_len]:
        raise CorruptCheckpointError(str(path), "digest is not the last 32 bytes")
    tensors: dict[str, torch.Tensor] = {}
    for key, info in header.items():
        if key in ("__metadata__", DIGEST_KEY):
            continue
        dtype, begin, end, shape = _tensor_entry(path, key, info, data_len - 32)
        numel = math.prod(shape)
        if numel == 0:
            tensors[key] = torch.empty(shape, dtype=dtype)
        else:
            tensors[key] = torch.frombuffer(buf, dtype=dtype, count=numel, offset=base + begin).reshape(shape)
    where = str(path)
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CorruptCheckpointError(where, "malformed checkpoint structure (no state object)")
    ckpt = Checkpoint(
        path=path,
        format_version=meta["format_version"],
        step=_int_or_none(path, meta.get("step"), "step"),
        epoch=_int_or_none(path, meta.get("epoch"), "epoch"),
        created_at=_float_or_none(path, meta.get("created_at")),
        extra=decode_tree(meta.get("extra"), tensors, map_location, where),
        rng=decode_tree(meta.get("rng"), tensors, "cpu", where),
        sha256=stored,
        file_sha256=whole,
        **{part: decode_tree(state.get(part), tensors, map_location, where) for part in STATE_PARTS},
    )
    module_metas = meta.get("state_metadata") or {}
    if not isinstance(module_metas, dict):
        raise CorruptCheckpointError(where, "malformed checkpoint structure (state_metadata)")
    for part, module_meta in module_metas.items():
        current = getattr(ckpt, part, None) if part in STATE_PARTS else None
        if not isinstance(current, dict):
            raise CorruptCheckpointError(where, f"malformed checkpoint structure (metadata of {part!r})")
        restored = OrderedDict(current)
        restored._metadata = decode_tree(module_meta, tensors, "cpu", where)  # type: ignore[attr-defined]
        setattr(ckpt, part, restored)
    return ckpt


def _is_int(x: Any) -> bool:
    return type(x) is int


def _tensor_entry(path: Path, key: str, info: Any, data_end: int) -> tuple[torch.dtype, int, int, list[int]]:
    """(dtype, begin, end, shape) of one header entry, every field checked: integers only (no
    floats, no bools), shapes >= 0, offsets inside the data, sizes consistent."""
    bad = CorruptCheckpointError(str(path), f"bad entry for tensor {key!r}")
    if not isinstance(info, dict):
        raise bad
    dtype = _FROM_ST.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
    offsets, shape = info.get("data_offsets"), info.get("shape")
    if (dtype is None or not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) for o in offsets) or not isinstance(shape, list)
            or len(shape) > 64 or not all(_is_int(d) and 0 <= d <= data_end for d in shape)):
        raise bad
    begin, end = offsets
    numel = math.prod(shape)
    if not 0 <= begin <= end <= data_end or end - begin != numel * dtype.itemsize:
        raise CorruptCheckpointError(str(path), f"tensor {key!r} has inconsistent offsets")
    return dtype, begin, end, shape


def _int_or_none(path: Path, x: Any, what: str) -> int | None:
    if x is None or _is_int(x):
        return x
    raise CorruptCheckpointError(str(path), f"{what} {x!r:.40} is not an integer")


def _float_or_none(path: Path, x: Any) -> float | None:
    if x is None or (isinstance(x, int | float) and not isinstance(x, bool)):
        return x
    raise CorruptCheckpointError(str(path), f"created_at {x!r:.40} is not a number")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
        file_sha256=_sha256_file(path),
        format_version=0,
        migrated_from=0,
        step=obj.get("step"),
        epoch=obj.get("epoch"),
        created_at=obj.get("created_at"),
        extra=obj.get("extra"),
        rng=obj.get("rng"),
        **{part: obj.get(part) for part in STATE_PARTS},
    )


