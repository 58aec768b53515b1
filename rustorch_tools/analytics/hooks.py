"""Alert hooks run when a gate fails: a local command or a JSON webhook.

A hook that fails (command missing, non-zero exit, timeout, HTTP error, unreachable URL)
is reported in the gate's output; it never changes the gate's verdict or exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .jsonout import jsonable

HOOK_TIMEOUT_S = 30.0


def _payload_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(jsonable(payload), allow_nan=False, separators=(",", ":")).encode()


def run_command_hook(command: str, payload: dict[str, Any], timeout: float = HOOK_TIMEOUT_S) -> dict[str, Any]:
    """Run `command` (split like a shell would, but no shell) with the payload on stdin.

    Environment: RUSTORCH_GATE_RUN, RUSTORCH_GATE_BASELINE, RUSTORCH_GATE_FAILED (number of
    violated rules), RUSTORCH_GATE_PAYLOAD (the JSON, also on stdin).
    """
    result: dict[str, Any] = {"kind": "exec", "target": command, "ok": False}
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        result["error"] = f"cannot split command: {exc}"
        return result
    if not argv:
        result["error"] = "empty command"
        return result
    data = _payload_bytes(payload)
    env = dict(os.environ)
    env.update({
        "RUSTORCH_GATE_RUN": str(payload.get("run", "")),
        "RUSTORCH_GATE_BASELINE": str(payload.get("baseline", "")),
        "RUSTORCH_GATE_FAILED": str(payload.get("failed", "")),
        "RUSTORCH_GATE_PAYLOAD": data.decode(),
    })
    try:
        proc = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        result["error"] = f"command not found: {argv[0]}"
        return result
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {timeout:g} s"
        return result
    except OSError as exc:
        result["error"] = f"cannot run: {exc}"
        return result
    result["returncode"] = proc.returncode
    result["stderr"] = proc.stderr.decode(errors="replace")[-2000:]
    result["ok"] = proc.returncode == 0
    if not result["ok"]:
        result["error"] = f"exited with status {proc.returncode}"
    return result


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """POST the payload as JSON; only http(s) URLs."""
    result: dict[str, Any] = {"kind": "webhook", "target": url, "ok": False}
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        result["error"] = f"unsupported URL scheme {scheme!r} (http or https only)"
        return result
    request = urllib.request.Request(
        url, data=_payload_bytes(payload), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "rustorch-tools-gate"},
    )
    # urlopen's timeout bounds each socket operation, not the request: a server that sends
    # one byte every few seconds would hold the gate for ever. The request runs in a daemon
    # thread and `timeout` is the deadline for all of it (DNS, connect, send, response).
    done: dict[str, Any] = {}

    def send() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
                done["status"] = response.status
        except urllib.error.HTTPError as exc:
            done["status"], done["error"] = exc.code, f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            done["error"] = f"not delivered: {getattr(exc, 'reason', exc)}"

    worker = threading.Thread(target=send, name="rustorch-webhook", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        result["error"] = f"not delivered: no complete answer within {timeout:g} s (--hook-timeout)"
        return result
    if "status" in done:
        result["status"] = done["status"]
        result["ok"] = 200 <= done["status"] < 300 and "error" not in done
    if not result["ok"]:
        result["error"] = done.get("error") or f"HTTP {done.get('status')}"
    return result
