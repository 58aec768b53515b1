"""The hash-chained audit trail: intact chains verify, every kind of tampering is caught."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from click.testing import CliRunner

from rustorch_tools.cli import cli
from rustorch_tools.store import audit
from rustorch_tools.store.runstore import RunStore


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def chain(tmp_path) -> Path:
    for i in range(5):
        RunStore(tmp_path).audit_append("validate", {"i": i, "text": "ünïcode"})
    return tmp_path


def log_lines(root: Path) -> list[bytes]:
    return (root / ".audit" / "log.jsonl").read_bytes().splitlines(keepends=True)


def write_lines(root: Path, lines: list[bytes]) -> None:
    (root / ".audit" / "log.jsonl").write_bytes(b"".join(lines))


def test_intact_chain(chain):
    st = audit.verify(chain)
    assert st.ok and st.entries == 5 and st.problems == []
    entries = [json.loads(x) for x in log_lines(chain)]
    assert [e["seq"] for e in entries] == list(range(5))
    assert entries[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert {"time", "user", "host", "pid", "command", "details"} <= set(entries[0])
    res = invoke("audit", "verify", str(chain))
    assert res.exit_code == 0 and "5 entries" in res.output


def test_no_log_is_ok(tmp_path):
    st = audit.verify(tmp_path)
    assert st.ok and not st.present
    assert invoke("audit", "verify", str(tmp_path)).exit_code == 0


def test_edited_entry(chain):
    lines = log_lines(chain)
    lines[2] = lines[2].replace(b'"i":2', b'"i":9')
    write_lines(chain, lines)
    st = audit.verify(chain)
    assert not st.ok and any(p["line"] == 3 and "edited" in p["problem"] for p in st.problems)


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(chain):
    lines = log_lines(chain)
    e = json.loads(lines[2])
    e["details"]["i"] = 9
    e["hash"] = audit.entry_hash(e["prev"], e)
    lines[2] = audit.canonical(e) + b"\n"
    write_lines(chain, lines)
    st = audit.verify(chain)
    assert not st.ok and any(p["line"] == 4 and "chain broken" in p["problem"]
                             for p in st.problems)


@pytest.mark.parametrize("mutate", ["remove_middle", "remove_first", "insert", "reorder",
                                    "truncate_end", "duplicate"])
def test_structural_tampering(chain, mutate):
    lines = log_lines(chain)
    if mutate == "remove_middle":
        del lines[2]
    elif mutate == "remove_first":
        del lines[0]
    elif mutate == "insert":
        fake = json.loads(lines[1])
        fake["details"] = {"forged": True}
        fake["hash"] = audit.entry_hash(fake["prev"], fake)
        lines.insert(2, audit.canonical(fake) + b"\n")
    elif mutate == "reorder":
        lines[1], lines[3] = lines[3], lines[1]
    elif mutate == "truncate_end":
        del lines[-2:]
    elif mutate == "duplicate":
        lines.append(lines[-1])
    write_lines(chain, lines)
    st = audit.verify(chain)
    assert not st.ok, mutate
    res = invoke("audit", "verify", str(chain), "--json")
    assert res.exit_code == 1 and json.loads(res.output)["ok"] is False


def test_garbage_line(chain):
    lines = log_lines(chain)
    lines.insert(1, b"\x00not json\n")
    write_lines(chain, lines)
    assert not audit.verify(chain).ok


def test_appends_continue_a_valid_chain(chain):
    RunStore(chain).audit_append("repair", {})
    assert audit.verify(chain).ok and audit.verify(chain).entries == 6


def test_validate_reports_a_broken_chain(chain):
    lines = log_lines(chain)
    del lines[1]
    write_lines(chain, lines)
    res = invoke("validate", str(chain), "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["audit"]["ok"] is False
    assert doc["findings"][0]["code"] == "RT602"


def _append_many(root: str, n: int) -> None:
    for i in range(n):
        RunStore(root).audit_append("validate", {"i": i})


def test_concurrent_appends_keep_one_chain(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    st = audit.verify(tmp_path)
    assert st.ok and st.entries == 45, st.problems
