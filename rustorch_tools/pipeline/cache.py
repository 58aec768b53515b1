"""Content-addressed cache keys: a stage instance re-runs only when something it depends on
changed — its resolved params, its upstream outputs' digests, its code, or the environment."""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .execute import canonical

MAX_HASHED_FILE = 256 * 1024 * 1024
ENV_PACKAGES = ("torch", "rustorch", "numpy", "torchvision")


def _file_digest(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_HASHED_FILE:
            return None
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


@cache
def environment() -> dict[str, Any]:
    """What else a result depends on: interpreter, machine and the key packages' versions."""
    versions = {}
    for name in ENV_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "machine": platform.machine(),
            "implementation": sys.implementation.name, "packages": versions}


@cache
def _module_digest(module: str) -> str:
    spec = importlib.util.find_spec(module)
    origin = Path(spec.origin) if spec is not None and spec.origin not in (None, "built-in", "frozen") else None
    return (_file_digest(origin) if origin is not None else None) or f"module:{module}"


@cache
def _train_digest() -> str:
    """The training code: every module of rustorch_tools.train."""
    root = Path(__file__).resolve().parent.parent / "train"
    h = hashlib.sha256()
    for p in sorted(root.glob("*.py")):
        h.update(p.name.encode())
        h.update((_file_digest(p) or "").encode())
    return h.hexdigest()


def code_digest(kind: str, body: Any, pipeline_dir: Path) -> str:
    if kind == "python":
        return _module_digest(body.partition(":")[0])
    if kind == "train":
        return _train_digest()
    files = {}
    for arg in body:  # scripts the command names: their content is its code
        if "/" in arg or arg.endswith((".py", ".sh")):
            path = (pipeline_dir / arg) if not Path(arg).is_absolute() else Path(arg)
            digest = _file_digest(path)
            if digest is not None:
                files[arg] = digest
    return hashlib.sha256(canonical({"argv0": body[0], "files": files})).hexdigest()


def key(kind: str, body: Any, params: Any, point: dict[str, Any], upstream: dict[str, str],
        pipeline_dir: Path) -> str:
    """The cache key of a resolved stage instance (upstream: instance id -> outputs digest)."""
    return hashlib.sha256(canonical({
        "kind": kind, "body": body, "params": params, "point": point, "upstream": upstream,
        "code": code_digest(kind, body, pipeline_dir), "environment": environment(),
    })).hexdigest()
