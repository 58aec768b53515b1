"""Counts of native and fallback calls per aten op, and the fallback policy."""

from __future__ import annotations

from typing import Literal

from . import _C

Policy = Literal["silent", "warn", "error"]


def op_stats() -> dict[str, dict[str, int]]:
    """Per aten op: how many calls ran on a native kernel and how many on the CPU fallback."""
    return {op: {"native": n, "fallback": f} for op, (n, f) in _C._op_stats().items()}


def reset_op_stats() -> None:
    _C._reset_op_stats()


def set_fallback_policy(policy: Policy) -> Policy:
    """Sets what a fallback call does: 'silent' (run it), 'warn' (once per op), 'error' (raise).

    Returns the previous policy. The initial one comes from RUSTORCH_FALLBACK.
    """
    previous = _C._fallback_policy()
    _C._set_fallback_policy(policy)
    return previous
