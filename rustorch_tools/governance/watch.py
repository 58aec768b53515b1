"""`watch RUNS_DIR --every 10m`: incremental validation passes as a foreground service.

Each pass is `incremental.validate_incremental` (history appended under RUNS_DIR/.audit/).
When a pass finds runs that newly have errors, `watch` can quarantine them (`--quarantine`)
and fire the gate hooks (`--hook CMD`, `--webhook URL`; analytics/hooks.py) with the payload
`{"event": "validation", "runs_dir", "new_errors", "summary"}`. SIGTERM or SIGINT ends it
cleanly: a pass in progress finishes (caches and history stay consistent), the wait is cut
short, exit 0. Recipes for cron and systemd timers: docs/governance.md.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..analytics.hooks import post_webhook, run_command_hook
from .incremental import PassOutcome, validate_incremental

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """'90', '90s', '10m', '1h', '1d' -> seconds (> 0)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"interval {text!r}: a positive number with an optional unit s, m, h, d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def fire_hooks(runs_dir: Path, out: PassOutcome, hooks: list[str],
               webhooks: list[str]) -> list[dict[str, Any]]:
    payload = {"event": "validation", "runs_dir": str(runs_dir), "run": "",
               "failed": len(out.new_errors), "new_errors": out.new_errors,
               "summary": out.report.summary()}
    results = [run_command_hook(h, payload) for h in hooks]
    results += [post_webhook(u, payload) for u in webhooks]
    return results


def run_pass(runs_dir: Path, *, quarantine: bool, hooks: list[str], webhooks: list[str],
             jobs: int | None, mode: str) -> tuple[PassOutcome, dict[str, Any]]:
    out = validate_incremental(runs_dir, jobs=jobs, mode=mode)
    extra: dict[str, Any] = {}
    if out.new_errors:
        if quarantine:
            from .quarantine import quarantine_runs

            q = quarantine_runs(runs_dir, jobs=jobs)
            extra["quarantined"] = [m.source for m in q.moved]
            extra["kept"] = [s["run_id"] for s in q.skipped]
        if hooks or webhooks:
            extra["hooks"] = fire_hooks(runs_dir, out, hooks, webhooks)
    return out, extra


def serve(runs_dir: Path, every_s: float, once_pass: Callable[[], None],
          max_passes: int | None = None) -> int:
    """Call `once_pass` every `every_s` seconds until SIGTERM/SIGINT; returns passes run."""
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    passes = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            once_pass()
            passes += 1
            if max_passes is not None and passes >= max_passes:
                break
            stop.wait(max(0.0, every_s - (time.monotonic() - started)))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return passes
