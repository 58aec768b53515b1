"""Code identity (git commit + digest of uncommitted changes, source-tree digest) and the
environment lock (interpreter, torch, rustorch, every installed distribution)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 10.0
# Folders of the code tree whose Python sources make up the source digest.
SOURCE_PACKAGES = ("rustorch_tools", "rustorch_device")
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".venv", "build", "data"})


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def code_root() -> Path:
    """The folder holding the `rustorch_tools` package in use (the checkout in development)."""
    return Path(__file__).resolve().parents[2]


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True,
                             timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _source_files(root: Path, extra: list[Path]) -> list[Path]:
    files: list[Path] = []
    for pkg in SOURCE_PACKAGES:
        base = root / pkg
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            files += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    files += [p for p in extra if p.is_file()]
    return sorted(set(files))


def source_digest(root: Path, extra: list[Path] | None = None) -> str:
    """SHA-256 over (relative path, content) of every .py file of the packages and `extra`."""
    h = hashlib.sha256()
    for path in _source_files(root, extra or []):
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def code_identity(root: Path | None = None, extra: list[Path] | None = None) -> dict[str, Any]:
    """`{"git_commit", "git_dirty", "git_diff_sha256", "source_sha256"}` of the code tree.

    `git_diff_sha256` digests `git diff HEAD --binary` (uncommitted changes of tracked files);
    outside a git work tree the git fields are null and only the source digest identifies
    the code.
    """
    root = Path(root or code_root()).resolve()
    head = _git(["rev-parse", "HEAD"], root)
    commit = head.decode().strip() if head else None
    diff = _git(["diff", "HEAD", "--binary"], root) if commit else None
    return {
        "git_commit": commit,
        "git_dirty": None if diff is None else bool(diff),
        "git_diff_sha256": None if diff is None else hashlib.sha256(diff).hexdigest(),
        "source_sha256": source_digest(root, extra),
    }


def installed_packages() -> list[str]:
    """`name==version` of every installed distribution, sorted (the `pip freeze` lock)."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            seen.setdefault(name.lower().replace("_", "-"), f"{name}=={dist.version}")
    return [seen[k] for k in sorted(seen)]


def environment_lock() -> dict[str, Any]:
    """Versions that decide whether a run can be replayed bit for bit, and the full lock."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "torch": package_version("torch"),
        "rustorch": package_version("rustorch"),
        "numpy": package_version("numpy"),
        "machine": platform.machine(),
        "system": platform.system(),
        "packages": installed_packages(),
    }


# The versions whose difference makes a bit-exact replay impossible (exit 2 of `replay`).
CRITICAL_VERSIONS = ("python", "torch", "rustorch", "numpy", "machine")


def version_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [f"{k}: recorded {recorded.get(k)!r}, here {current.get(k)!r}"
            for k in CRITICAL_VERSIONS if recorded.get(k) != current.get(k)]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
