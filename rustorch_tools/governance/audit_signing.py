"""Signed heads anchor the audit chain: `audit sign` / `audit verify --pubkey`.

The hash chain (audit.py) detects edits inside the log, and head.json detects entries cut
from its end, but whoever can write `.audit/` can replace the log and head.json with a new,
self-consistent chain. A signed head closes that: `audit sign RUNS_DIR --key K` appends an
`audit sign` entry and then one line to `.audit/signed-heads.jsonl`:

    {"seq": N, "hash": <entry N's hash>, "time": t, "key_id": <16 hex>, "signature": <base64>}

where the Ed25519 signature is over `b"rustorch-audit-head-signature/v1\\0"` + the canonical
JSON of the other four keys. `verify_signed` then requires every signature to verify with
the given public key and the log to still hold each signed entry with the signed hash: a log
truncated before the last signed head, or a wholly forged chain, is detected. Entries after
the last signed head are protected by the chain only (sign after important commands).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import RustorchToolsError
from ..repro.signing import key_id
from ..store import audit
from ..store.atomic import append_line
from ..store.runstore import RunStore

SIGNED_NAME = "signed-heads.jsonl"
DOMAIN = b"rustorch-audit-head-signature/v1\0"


class AuditSignError(RustorchToolsError):
    """The chain cannot be signed (missing or already broken)."""


def _message(body: dict[str, Any]) -> bytes:
    return DOMAIN + audit.canonical(body)


def sign_head(runs_dir: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Append an `audit sign` entry and sign it; returns the signed-head line."""
    store = RunStore(runs_dir)
    status = store.audit_verify()
    if not status.present:
        raise AuditSignError(f"no audit log in {runs_dir}: nothing to sign")
    if not status.ok:
        raise AuditSignError(f"the audit chain is broken ({status.problems[0]['problem']}); "
                             "not signing it")
    kid = key_id(key.public_key())
    entry = store.audit_append("audit sign", {"key_id": kid})
    body = {"seq": entry["seq"], "hash": entry["hash"], "time": time.time(), "key_id": kid}
    line = {**body, "signature": base64.b64encode(key.sign(_message(body))).decode("ascii")}
    append_line(audit.audit_dir(runs_dir) / SIGNED_NAME, audit.canonical(line) + b"\n")
    return line


def _log_hashes(log: Path, wanted: set[int]) -> tuple[dict[int, str], int]:
    """(hash of each wanted seq found in the log, number of entries)."""
    found: dict[int, str] = {}
    n = 0
    with open(log, "rb") as fh:
        for raw in fh:
            n += 1
            try:
                entry = json.loads(raw)
                seq = entry["seq"]
            except (ValueError, KeyError, TypeError):
                continue
            if seq in wanted and seq not in found:
                found[seq] = str(entry.get("hash"))
    return found, n


def verify_signed(runs_dir: Path, public: Ed25519PublicKey) -> tuple[list[dict[str, Any]], int | None]:
    """(problems, last signed seq) of the signed heads against the log."""
    adir = audit.audit_dir(runs_dir)
    path, log = adir / SIGNED_NAME, adir / audit.LOG_NAME
    if adir.is_symlink() or path.is_symlink():
        return [{"line": None, "problem": f"{path} is a symbolic link (not followed)"}], None
    try:
        raw_lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return [{"line": None, "problem": f"no signed head ({audit.AUDIT_DIR}/{SIGNED_NAME} "
                                          "is missing): run `audit sign` first"}], None
    problems: list[dict[str, Any]] = []
    heads: list[dict[str, Any]] = []
    want = key_id(public)
    for lineno, raw in enumerate(raw_lines, 1):
        where = f"{SIGNED_NAME} line {lineno}"
        try:
            line = json.loads(raw)
            body = {k: line[k] for k in ("seq", "hash", "time", "key_id")}
            sig = base64.b64decode(str(line["signature"]), validate=True)
        except (ValueError, KeyError, TypeError):
            problems.append({"line": None, "problem": f"{where}: not a signed head"})
            continue
        if body["key_id"] != want:
            problems.append({"line": None, "problem": f"{where}: signed by key "
                                                      f"{body['key_id']!r}, not {want}"})
            continue
        try:
            public.verify(sig, _message(body))
        except InvalidSignature:
            problems.append({"line": None, "problem": f"{where}: the signature does not verify "
                                                      "(forged or edited)"})
            continue
        heads.append(body)
    if not heads:
        if not problems:
            problems.append({"line": None, "problem": f"{SIGNED_NAME} holds no signed head"})
        return problems, None
    if not log.exists():
        return problems + [{"line": None, "problem": "the audit log is missing but "
                                                     f"{len(heads)} heads were signed"}], None
    found, n = _log_hashes(log, {b["seq"] for b in heads if isinstance(b["seq"], int)})
    for body in heads:
        seq = body["seq"]
        if seq not in found:
            problems.append({"line": None, "seq": seq, "problem": f"the log holds {n} entries "
                             f"but entry {seq} was signed: the log was truncated"})
        elif found[seq] != body["hash"]:
            problems.append({"line": seq + 1, "seq": seq, "problem": f"entry {seq} differs from "
                             "the signed head: the chain was rewritten (forged)"})
    return problems, max(int(b["seq"]) for b in heads)
