"""What a run records about where it ran: versions, git state, host, accelerator."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

GIT_TIMEOUT_S = 5.0


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(cwd: str | None = None) -> tuple[str | None, bool | None]:
    """(HEAD commit, dirty flag) of the git work tree holding `cwd`; (None, None) outside one.

    Dirty means tracked files differ from HEAD (untracked files do not count).
    """
    cwd = cwd or os.getcwd()
    head = _git(["rev-parse", "HEAD"], cwd)
    if head is None:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return head.strip(), (None if status is None else bool(status.strip()))


def accelerator() -> str | None:
    """The current torch accelerator's type (e.g. "rustorch") if one is available, else None.

    Only looks at torch if the program already imported it (never imports it itself).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        acc = torch.accelerator.current_accelerator(check_available=True)
    except Exception:  # an accelerator without a usable runtime is simply "none"
        return None
    return None if acc is None else acc.type


def capture(cwd: str | None = None) -> dict[str, Any]:
    """The `environment` object of run.json."""
    torch = sys.modules.get("torch")
    commit, dirty = git_state(cwd)
    return {
        "python": platform.python_version(),
        "torch": getattr(torch, "__version__", None) or _package_version("torch"),
        "rustorch": _package_version("rustorch"),
        "git_commit": commit,
        "git_dirty": dirty,
        "hostname": socket.gethostname(),
        "accelerator": accelerator(),
        "pid": os.getpid(),
    }
