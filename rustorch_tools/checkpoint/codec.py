"""The state codec: a state tree (state dicts, RNG states, extra) <-> (JSON, named tensors).

Tensors become `{"$tensor": key}` nodes (tied tensors stored once), other values JSON with
tagged nodes for tuples, non-string keys, non-finite floats, numpy arrays, bytes, dtypes and
devices. Decoding never unpickles and raises only CorruptCheckpointError on a forged tree.
"""

from __future__ import annotations

import base64
import math
import random
import warnings
from typing import Any

import numpy as np
import torch

from ..errors import CorruptCheckpointError, NotSerializableError

DIGEST_KEY = "__rustorch_sha256__"  # the file's SHA-256 tail (fileformat)
BLAKE3_KEY = "__rustorch_blake3__"  # its BLAKE3 tail (format 2)
MAX_DEPTH = 200  # deeper trees are forged: a state dict is a few levels deep

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


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.real_dtype: dict[str, torch.dtype] = {}
        self._seen: dict[tuple[Any, ...], str] = {}

    def _key(self, path: str) -> str:
        key, n = path, 1
        while key in self.tensors or key in (DIGEST_KEY, BLAKE3_KEY):
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


def decode_tree(obj: Any, tensors: dict[str, torch.Tensor], location: Any, where: str) -> Any:
    """`obj` decoded; any malformed node raises CorruptCheckpointError naming `where`."""
    try:
        return _decode(obj, tensors, location, 0)
    except CorruptCheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError, RuntimeError, MemoryError) as exc:
        raise CorruptCheckpointError(where, f"malformed checkpoint structure "
                                     f"({type(exc).__name__}: {str(exc)[:200]})") from None


def _decode(obj: Any, tensors: dict[str, torch.Tensor], location: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"state tree nested deeper than {MAX_DEPTH} levels")
    depth += 1
    if isinstance(obj, list):
        return [_decode(v, tensors, location, depth) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        t = tensors[obj["$tensor"]]
        if "dtype" in obj:
            t = t.view(_DTYPE_BY_NAME[obj["dtype"]]).reshape(obj["shape"])
        target = _target_device(obj.get("device", "cpu"), location)
        return t if target == "cpu" else t.to(target)
    if "$tuple" in obj:
        return tuple(_decode(v, tensors, location, depth) for v in obj["$tuple"])
    if "$dict" in obj:
        return {_decode(k, tensors, location, depth): _decode(v, tensors, location, depth) for k, v in obj["$dict"]}
    if "$float" in obj:
        return float(obj["$float"])
    if "$ndarray" in obj:
        spec = obj["$ndarray"]
        raw = _decode(spec["data"], tensors, "cpu", depth)
        return raw.numpy().view(np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()
    if "$bytes" in obj:
        return base64.b64decode(obj["$bytes"])
    if "$dtype" in obj:
        return _DTYPE_BY_NAME[obj["$dtype"]]
    if "$device" in obj:
        return torch.device(obj["$device"])
    return {k: _decode(v, tensors, location, depth) for k, v in obj.items()}


def _target_device(saved: str, location: Any) -> Any:
    if location is None:
        return saved
    if isinstance(location, dict):
        return location.get(saved, saved)
    return str(location) if isinstance(location, torch.device) else location


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
