"""The checkpoint file format (docs/checkpoints.md): one safetensors file.

Every tensor of the state plus a JSON description of the rest in the header's
`__metadata__["rustorch_checkpoint"]`, and two digest tails as the last 64 bytes (format 2): a
`U8[32]` tensor `__rustorch_sha256__` = SHA-256 of every byte before it, then a `U8[32]` tensor
`__rustorch_blake3__` = BLAKE3 of every byte before it (so BLAKE3 alone covers the whole file).
Format 1 has the SHA-256 tail only, as the last 32 bytes, and is still read. Loading never unpickles. Format 0 (legacy) is a `torch.save` dict, read only
through `torch.load(weights_only=True)`. Every malformed header (float offsets, negative or
huge shapes, deep nesting) raises CorruptCheckpointError.
"""

from __future__ import annotations

import io
import json
import math
import mmap
import os
import pickle
import struct
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..errors import CheckpointNotFoundError, CorruptCheckpointError, UnsupportedCheckpointVersion
from ..store import atomic
from . import digests
from .codec import _FROM_ST, _ST_DTYPES, BLAKE3_KEY, DIGEST_KEY, _Encoder, decode_tree

FORMAT_VERSION = 2
SUFFIX = ".safetensors"
META_KEY = "rustorch_checkpoint"
_MAX_HEADER = 256 << 20
STATE_PARTS = ("model", "optimizer", "scheduler", "scaler")
# The digest tensors at the end of the data, in file order, per format version.
_TAIL_KEYS = {1: (DIGEST_KEY,), 2: (DIGEST_KEY, BLAKE3_KEY)}
_TAIL_ALGORITHM = {DIGEST_KEY: digests.SHA256, BLAKE3_KEY: digests.BLAKE3}
VERIFY_MODES = ("fast", "full")
# Linux >= 5.14: map every page of the file in one call instead of one fault per few pages.
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)


@dataclass
class Checkpoint:
    """A loaded checkpoint: state dicts, counters, RNG states and where it came from.

    `sha256` / `blake3`: the digests the file stores in its tails; `file_sha256` /
    `file_blake3`: digests of the whole file (what manifest.json and `latest` record), None
    when that digest was not computed; `verified`: the algorithms whose digests were checked.
    """

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
    file_sha256: str | None = None
    blake3: str | None = None
    file_blake3: str | None = None
    verified: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedCheckpoint:
    """What save_checkpoint wrote: the file, its whole-file SHA-256 and BLAKE3, and size."""

    path: Path
    sha256: str
    size: int
    step: int | None
    removed: tuple[Path, ...] = field(default=())
    blake3: str | None = None


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


_CHUNK = 8 << 20
_PARALLEL_MIN = 16 << 20


def _chunks(views: list[memoryview]) -> list[memoryview]:
    return [v[i : i + _CHUNK] for v in views for i in range(0, v.nbytes, _CHUNK)]


def _write_hashed(fh: BinaryIO, hashers: dict[str, Any], views: list[memoryview]) -> None:
    """Write `views` to `fh` and feed them to every hasher, in order.

    For large states each hasher runs on its own thread, a chunk behind the writer (the
    hashes and the write syscalls release the GIL), so SHA-256 and BLAKE3 together cost about
    the slower of the two in wall time where cores are free; the bulk fsync then overlaps the
    end of the hashing, and the caller's final fsync has only the tails left to flush.
    """
    if sum(v.nbytes for v in views) < _PARALLEL_MIN:
        for view in views:
            for h in hashers.values():
                h.update(view)
            fh.write(view)
        return
    workers = [digests.OrderedHasher(h, name) for name, h in hashers.items()]
    try:
        for chunk in _chunks(views):
            for worker in workers:
                worker.submit(chunk)
            fh.write(chunk)  # from the tensor's own memory: no copy in user space
        fh.flush()
        os.fsync(fh.fileno())
    finally:
        for worker in workers:
            worker.wait()


def write_checkpoint_file(path: Path, meta: dict[str, Any], enc: _Encoder) -> tuple[dict[str, str], int]:
    """Write the safetensors file atomically (store.atomic.atomic_file: temp, fsync, rename,
    fsync of the folder).

    Returns ({"sha256": …, "blake3": …} of the whole file, size). Tensors are written from
    their own memory (no copy) and hashed on the way.
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
    for key in _TAIL_KEYS[2]:  # the layout this code writes (format 2)
        header[key] = {"dtype": "U8", "shape": [32], "data_offsets": [offset, offset + 32]}
        offset += 32
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    prefix = struct.pack("<Q", len(head)) + head

    sha = digests.new_hasher(digests.SHA256)
    b3 = digests.new_hasher(digests.BLAKE3)
    with atomic.atomic_file(path, durable=True) as fh:
        for h in (sha, b3):
            h.update(prefix)
        fh.write(prefix)
        _write_hashed(fh, {digests.SHA256: sha, digests.BLAKE3: b3}, views)
        sha_inner = sha.digest()  # SHA-256 of every byte before it
        b3.update(sha_inner)
        b3_inner = b3.digest()  # BLAKE3 of every byte before it, SHA-256 tail included
        tails = sha_inner + b3_inner
        fh.write(tails)
    sha.update(tails)
    b3.update(b3_inner)
    return {digests.SHA256: sha.hexdigest(), digests.BLAKE3: b3.hexdigest()}, len(prefix) + offset


def read_header(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(safetensors header, our metadata) of a format 1 or 2 file, without reading the tensors."""
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
    copying, and stay valid after the file is unlinked or replaced (rotation, atomic rename).
    The pages are mapped up front (read faults only: nothing is copied)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return bytearray()
        buf = mmap.mmap(fh.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    if _MADV_POPULATE_READ is not None:
        try:
            buf.madvise(_MADV_POPULATE_READ)
        except OSError:
            pass  # an older kernel: the pages fault in as they are read
    return buf


def _looks_like_safetensors(buf: Any) -> bool:
    # The header length's first byte can be 0x80 (a pickle's first byte): look at the JSON too.
    if len(buf) < 9:
        return False
    (n,) = struct.unpack_from("<Q", buf)
    return n <= len(buf) - 8 and buf[8:9] == b"{"


def _check_verify(verify: str) -> None:
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(map(repr, VERIFY_MODES))}, got {verify!r}")


def _expected_digests(expected: Mapping[str, str] | None) -> dict[str, str]:
    out = {k: v for k, v in (expected or {}).items() if v is not None}
    unknown = set(out) - set(digests.ALGORITHMS)
    if unknown or digests.SHA256 not in out and digests.BLAKE3 not in out:
        raise ValueError(f"expected needs sha256 and/or blake3 digests, got {sorted(out)}")
    return out


def _algorithms(verify: str, own: tuple[str, ...], expected: dict[str, str] | None) -> list[str]:
    """The digests to compute over the file. "fast": one digest, the run's record being the
    authority: BLAKE3 when the run recorded one (or, without a record, when the file has a
    BLAKE3 tail), SHA-256 otherwise (formats 0/1, runs that recorded only SHA-256).
    "full": every digest the file or the run holds (at least SHA-256)."""
    if verify == "full":
        wanted = set(own) | set(expected or ()) or {digests.SHA256}
    else:
        basis = expected if expected else own
        wanted = {digests.BLAKE3 if digests.BLAKE3 in basis else digests.SHA256}
    return [a for a in digests.ALGORITHMS if a in wanted]


def _hash_threads() -> int:
    return max(1, torch.get_num_threads())


def _verify_bytes(path: Path, view: memoryview, tails: dict[str, int], verify: str,
                  expected: dict[str, str] | None) -> dict[str, tuple[bytes | None, str]]:
    """Check `view` (the whole file) against the run's record `expected` (whole-file
    digests) and against its own digest tails (`tails`: algorithm -> offset of its tail).
    Returns algorithm -> (stored inner digest or None, whole-file hex digest) of what was
    computed; raises CorruptCheckpointError on the first mismatch."""
    size = len(view)
    algos = _algorithms(verify, tuple(tails), expected)
    threads = _hash_threads()
    jobs = [(lambda a=a: digests.inner_and_whole(a, view, tails.get(a, size), threads)) for a in algos]
    results = dict(zip(algos, digests.run_concurrently(jobs), strict=True))
    for algo, (_, whole) in results.items():
        if expected and algo in expected and expected[algo] != whole:
            raise CorruptCheckpointError(str(path), "differs from the checkpoint recorded for it "
                                         "(manifest.json / latest)", expected=expected[algo], actual=whole,
                                         algorithm=algo)
    out: dict[str, tuple[bytes | None, str]] = {}
    for algo, (inner, whole) in results.items():
        if algo in tails:
            stored = bytes(view[tails[algo] : tails[algo] + 32])
            if stored != inner:
                raise CorruptCheckpointError(str(path), f"content does not match its {_NAMES[algo]}",
                                             expected=stored.hex(), actual=inner.hex(), algorithm=algo)
            out[algo] = (stored, whole)
        else:
            out[algo] = (None, whole)
    return out


_NAMES = {digests.SHA256: "SHA-256", digests.BLAKE3: "BLAKE3"}


def read_checkpoint_file(
    path: str | os.PathLike[str],
    map_location: Any = None,
    *,
    verify: str = "fast",
    expected: Mapping[str, str] | None = None,
) -> Checkpoint:
    """Load and verify one checkpoint file (format 2 or 1, or legacy format 0).

    `verify="fast"` checks one digest: BLAKE3 where the file or `expected` has one, SHA-256
    otherwise; `"full"` checks every digest the file and `expected` hold. `expected`: the
    whole-file digests a run recorded ({"sha256": …, "blake3": …}); the file must match them.
    Raises CorruptCheckpointError (digest mismatch, malformed, or a pickle that is not plain
    tensors/containers), UnsupportedCheckpointVersion (a newer format).
    """
    _check_verify(verify)
    recorded = _expected_digests(expected) if expected is not None else None
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no checkpoint file at {path}")
    buf = _map_file(path)
    if not _looks_like_safetensors(buf) and (buf[:4] == b"PK\x03\x04" or buf[:1] == b"\x80"):
        return _read_legacy(path, buf, map_location, verify, recorded)  # a torch.save zip or a raw pickle
    if len(buf) < 8 + 32:
        raise CorruptCheckpointError(str(path), "file too short to be a checkpoint")
    (n,) = struct.unpack_from("<Q", buf)
    if n > min(_MAX_HEADER, len(buf) - 8 - 32):
        raise CorruptCheckpointError(str(path), "not a rustorch checkpoint (bad header length)")
    view = memoryview(buf)
    header, meta = _parse_header(path, bytes(view[8 : 8 + n]), n)
    base = 8 + n
    data_len = len(buf) - base
    version = meta["format_version"]
    tail_keys = _TAIL_KEYS.get(version)
    if tail_keys is None:
        raise CorruptCheckpointError(str(path), f"format_version {version} is not a safetensors checkpoint")
    tail_start = data_len - 32 * len(tail_keys)
    tails = {}
    for i, key in enumerate(tail_keys):
        entry = header.get(key)
        begin = tail_start + 32 * i
        if (not isinstance(entry, dict) or entry.get("data_offsets") != [begin, begin + 32]
                or entry.get("dtype") != "U8" or entry.get("shape") != [32]):
            raise CorruptCheckpointError(str(path), f"{_NAMES[_TAIL_ALGORITHM[key]]} digest is not "
                                         f"where format {version} puts it")
        tails[_TAIL_ALGORITHM[key]] = base + begin
    stray = {DIGEST_KEY, BLAKE3_KEY} - set(tail_keys)
    if stray & set(header):
        raise CorruptCheckpointError(str(path), f"format {version} has no {', '.join(sorted(stray & set(header)))}")
    checked = _verify_bytes(path, view, tails, verify, recorded)
    tensors: dict[str, torch.Tensor] = {}
    for key, info in header.items():
        if key == "__metadata__" or key in tail_keys:
            continue
        dtype, begin, end, shape = _tensor_entry(path, key, info, tail_start)
        numel = math.prod(shape)
        if numel == 0:
            tensors[key] = torch.empty(shape, dtype=dtype)
        else:
            tensors[key] = torch.frombuffer(buf, dtype=dtype, count=numel, offset=base + begin).reshape(shape)
    where = str(path)
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CorruptCheckpointError(where, "malformed checkpoint structure (no state object)")
    stored = {algo: bytes(view[at : at + 32]).hex() for algo, at in tails.items()}
    ckpt = Checkpoint(
        path=path,
        format_version=version,
        step=_int_or_none(path, meta.get("step"), "step"),
        epoch=_int_or_none(path, meta.get("epoch"), "epoch"),
        created_at=_float_or_none(path, meta.get("created_at")),
        extra=decode_tree(meta.get("extra"), tensors, map_location, where),
        rng=decode_tree(meta.get("rng"), tensors, "cpu", where),
        sha256=stored.get(digests.SHA256),
        blake3=stored.get(digests.BLAKE3),
        file_sha256=checked[digests.SHA256][1] if digests.SHA256 in checked else None,
        file_blake3=checked[digests.BLAKE3][1] if digests.BLAKE3 in checked else None,
        verified=tuple(checked),
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


def _read_legacy(path: Path, buf: Any, map_location: Any, verify: str,
                 expected: dict[str, str] | None) -> Checkpoint:
    """Format 0: a torch.save'd dict {model, optimizer, scheduler, scaler, step, epoch, extra, rng}.

    Checked against `expected` (it has no digest of its own), then read from the very bytes
    that were hashed with the weights_only unpickler, which refuses any global outside
    torch's allow-list.
    """
    checked = _verify_bytes(path, memoryview(buf), {}, verify, expected)
    location = map_location if map_location is not None else "cpu"
    try:
        obj = torch.load(io.BytesIO(buf), map_location=location, weights_only=True)
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
        file_sha256=checked[digests.SHA256][1] if digests.SHA256 in checked else None,
        file_blake3=checked[digests.BLAKE3][1] if digests.BLAKE3 in checked else None,
        verified=tuple(a for a in checked if expected and a in expected),
        format_version=0,
        migrated_from=0,
        step=obj.get("step"),
        epoch=obj.get("epoch"),
        created_at=obj.get("created_at"),
        extra=obj.get("extra"),
        rng=obj.get("rng"),
        **{part: obj.get(part) for part in STATE_PARTS},
    )
