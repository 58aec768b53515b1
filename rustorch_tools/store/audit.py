"""The append-only, hash-chained audit trail `RUNS_DIR/.audit/log.jsonl`.

Each line is one canonical JSON object (sorted keys, compact, UTF-8):
`{"seq", "time", "user", "host", "pid", "command", "details", "prev", "hash"}` where
`hash = sha256(prev_hash + canonical(entry without "hash"))` (hex) and the first entry has
`prev = "0" * 64`. Editing, removing, inserting or reordering an entry breaks the chain at that
entry. Removing entries from the *end* leaves a valid chain, so every append also rewrites
`.audit/head.json` (`{"seq", "hash"}`) atomically and `verify` checks the log reaches it.
Appends are serialized by the audit lock (store/locks.py) so concurrent commands chain correctly.
Callers go through `RunStore.audit_append` / `RunStore.audit_verify`, which check that `.audit`
is a real folder inside RUNS_DIR first.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RustorchToolsError
from .atomic import append_line, atomic_write_json
from .layout import AUDIT_DIR
from .locks import audit_lock

GENESIS = "0" * 64


class AuditChainError(RustorchToolsError):
    """The audit trail was lost (deleted log, head without log); no new chain is started."""


LOG_NAME = "log.jsonl"
HEAD_NAME = "head.json"
LOCK_NAME = "log.lock"


def audit_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / AUDIT_DIR


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(prev: str, entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(prev.encode("ascii") + canonical(body)).hexdigest()


def who() -> dict:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def _last_line(path: Path, block: int = 65536) -> bytes | None:
    """The last complete line of `path` without reading the whole log."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        end = os.fstat(fd).st_size
        buf = b""
        pos = end
        while pos > 0:
            step = min(block, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
            stripped = buf.rstrip(b"\n")
            cut = stripped.rfind(b"\n")
            if cut >= 0:
                return stripped[cut + 1:]
        stripped = buf.rstrip(b"\n")
        return stripped or None
    finally:
        os.close(fd)


def append(adir: Path, command: str, details: dict) -> dict:
    """Append one entry to the log in the checked audit folder `adir`; returns it (with its
    hash). Raises OSError if the folder is not writable."""
    log = adir / LOG_NAME
    with audit_lock(adir):
        last = _last_line(log)
        if last is None:
            seq, prev = 0, GENESIS
        else:
            try:
                tail = json.loads(last)
                seq, prev = int(tail["seq"]) + 1, str(tail["hash"])
            except (ValueError, KeyError, TypeError):
                # A damaged tail must not stop governance from recording what it does; the
                # chain break stays visible to `audit verify`.
                seq, prev = -1, hashlib.sha256(last).hexdigest()
        entry = {"seq": seq, "time": time.time(), **who(), "command": command,
                 "details": details, "prev": prev}
        entry["hash"] = entry_hash(prev, entry)
        append_line(log, canonical(entry) + b"\n")
        atomic_write_json(adir / HEAD_NAME, {"seq": seq, "hash": entry["hash"]})
    return entry


@dataclass
class AuditStatus:
    ok: bool
    entries: int
    problems: list[dict] = field(default_factory=list)
    present: bool = True

    def to_dict(self) -> dict:
        return {"ok": self.ok, "present": self.present, "entries": self.entries,
                "problems": self.problems}


def verify(runs_dir: Path) -> AuditStatus:
    """Walk the whole chain; every problem names the 1-based line it was found at."""
    adir = audit_dir(runs_dir)
    log = adir / LOG_NAME
    if adir.is_symlink() or log.is_symlink():
        return AuditStatus(ok=False, entries=0, problems=[
            {"line": None, "problem": f"{AUDIT_DIR} or its log is a symbolic link (not "
                                      "followed)"}])
    if not log.exists():
        return AuditStatus(ok=True, entries=0, present=False)
    problems: list[dict] = []
    prev, expect_seq, n = GENESIS, 0, 0
    tail: dict[int, str] = {}  # seq -> hash of the last two entries, for the head check
    with open(log, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            n += 1
            if not raw.endswith(b"\n"):
                problems.append({"line": lineno, "problem": "last entry is torn (no newline)"})
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                problems.append({"line": lineno, "problem": "entry is not valid JSON"})
                prev = hashlib.sha256(raw).hexdigest()
                expect_seq += 1
                continue
            seq, stored = entry.get("seq"), entry.get("hash")
            if entry.get("prev") != prev:
                problems.append({"line": lineno, "seq": seq,
                                 "problem": "chain broken: entry does not follow the previous "
                                            "one (removed, inserted or reordered entry)"})
            if stored != entry_hash(str(entry.get("prev")), entry):
                problems.append({"line": lineno, "seq": seq,
                                 "problem": "hash mismatch: entry was edited"})
            if seq != expect_seq:
                problems.append({"line": lineno, "seq": seq,
                                 "problem": f"sequence number {seq!r}, expected {expect_seq}"})
            prev = str(stored)
            expect_seq = (seq + 1) if isinstance(seq, int) else expect_seq + 1
            tail = {k: v for k, v in tail.items() if k >= expect_seq - 2}
            tail[expect_seq - 1] = prev
    head_path = adir / HEAD_NAME
    try:
        head = json.loads(head_path.read_bytes())
        h_seq, h_hash = head["seq"], head["hash"]
    except FileNotFoundError:
        problems.append({"line": None, "problem": "head.json is missing"})
    except (ValueError, KeyError, TypeError):
        problems.append({"line": None, "problem": "head.json is unreadable"})
    else:
        last_seq = expect_seq - 1
        if not isinstance(h_seq, int) or h_seq > last_seq:
            problems.append({"line": None, "seq": h_seq,
                             "problem": f"log ends at entry {last_seq} but head.json records "
                                        f"entry {h_seq}: entries were removed from the end"})
        elif h_seq < last_seq - 1:
            # One entry past the head is a command interrupted between its two writes.
            problems.append({"line": None, "seq": h_seq,
                             "problem": f"head.json records entry {h_seq} but the log ends at "
                                        f"{last_seq}: entries were appended without the tool"})
        elif tail.get(h_seq) != h_hash:
            problems.append({"line": None, "seq": h_seq,
                             "problem": "head.json hash differs from the log's entry: the end "
                                        "of the log was replaced"})
    return AuditStatus(ok=not problems, entries=n, problems=problems)
