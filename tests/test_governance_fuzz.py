"""Fuzz: randomly corrupted run folders always yield a finding, never a traceback, and no
command loses a byte (every file is hashed before and after, moves allowed)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.governance_synth import make_run

from rustorch_tools.cli import cli
from rustorch_tools.governance import jsonl_check
from rustorch_tools.store.jsonl import encode_row
from rustorch_tools.store.repair import split_lines

FILES = ["run.json", "metrics.jsonl", "events.jsonl", "manifest.json",
         "checkpoints/ckpt-00000001.pt"]
WRONG_TYPES = [("status", 3), ("created_at", "yesterday"), ("config", [1]), ("seed", "s"),
               ("tags", ["a"]), ("parent", "p"), ("environment", None), ("error", 5),
               ("summary", "none"), ("schema_version", "1"), ("run_id", 12), ("name", ""),
               ("heartbeat_interval_s", -1)]
# Ignored by the byte-preservation check: what the commands add on purpose.
ADDED = ("QUARANTINE.json", ".lock")

op = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 0.99)),
    st.tuples(st.just("garbage"), st.sampled_from(FILES[1:]), st.binary(min_size=1,
                                                                         max_size=40)),
    st.tuples(st.just("append"), st.sampled_from(FILES[1:3]), st.binary(min_size=1,
                                                                         max_size=300)),
    st.tuples(st.just("huge"), st.sampled_from(FILES[1:3]), st.integers(2_000, 50_000)),
    st.tuples(st.just("wrong_type"), st.just("run.json"), st.sampled_from(WRONG_TYPES)),
    st.tuples(st.just("symlink"), st.sampled_from(FILES + ["checkpoints/x.pt", "extra"]),
              st.none()),
    st.tuples(st.just("dir_for_file"), st.sampled_from(FILES[:4]), st.none()),
    st.tuples(st.just("delete"), st.sampled_from(["run.json", "manifest.json"]), st.none()),
    st.tuples(st.just("tear"), st.sampled_from(FILES[1:3]), st.tuples(st.floats(0, 1),
                                                                       st.integers(1, 40))),
)


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if Path(dirpath, d).is_symlink()]:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def corrupt(run: Path, outside: Path, action: str, name: str, arg) -> None:
    path = run / name
    if action == "truncate":
        data = path.read_bytes()
        body = data.rstrip(b"\n")
        # cut strictly inside the content, never exactly at a line boundary
        cut = max(1, min(len(body) - 1, int(len(body) * arg)))
        while cut > 1 and data[cut - 1:cut] == b"\n":
            cut -= 1
        path.write_bytes(data[:cut])
    elif action == "garbage":
        data = bytearray(path.read_bytes())
        at = len(data) // 3
        new = bytes(arg)
        if data[at:at + len(new)] == new:
            new = bytes(b ^ 0xFF for b in new)
        data[at:at + len(new)] = new
        path.write_bytes(bytes(data))
    elif action == "append":
        with open(path, "ab") as fh:
            fh.write(arg if b"\n" in arg[:-1] or not arg.endswith(b"\n") else arg + b"x")
    elif action == "huge":
        with open(path, "ab") as fh:
            fh.write(b"{" + b"A" * arg + b"}\n")
    elif action == "wrong_type":
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            return  # an earlier op already broke it
        if not isinstance(doc, dict):
            return
        key, value = arg
        doc[key] = value
        path.write_text(json.dumps(doc))
    elif action == "symlink":
        if path.exists() or path.is_symlink():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        path.parent.mkdir(exist_ok=True)
        os.symlink(outside / "secret", path)
    elif action == "dir_for_file":
        path.unlink()
        path.mkdir()
        (path / "inner").write_text("x")
    elif action == "delete":
        path.unlink()
    elif action == "tear":  # a writer died mid-line, then another appended after it
        lines = split_lines(path.read_bytes())
        at = int(len(lines) * arg[0])
        torn = encode_row({"step": 7, "time": 1.0, "loss": 0.25})[:arg[1]] + b"\n"
        path.write_bytes(b"".join(lines[:at]) + torn + b"".join(lines[at:]))
    else:  # pragma: no cover
        raise AssertionError(action)


def run_cli(*args: str):
    res = CliRunner().invoke(cli, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"traceback from {args}: {res.exception!r}\n{res.output}")
    return res


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=3), victim=st.integers(0, 1))
def test_corrupted_runs_are_reported_and_no_byte_is_lost(ops, victim):
    saved = jsonl_check.MAX_LINE, jsonl_check.CHUNK
    jsonl_check.MAX_LINE, jsonl_check.CHUNK = 8_000, 4_096  # exercise the over-long path
    tmp = Path(tempfile.mkdtemp(prefix="gov-fuzz-"))
    try:
        outside = tmp / "outside"
        outside.mkdir()
        (outside / "secret").write_bytes(b"outside bytes")
        root = tmp / "runs"
        make_run(root, "r0", rows=30)
        make_run(root, "r1", rows=30)
        run = root / f"r{victim}"
        applied = 0
        for action, name, arg in ops:
            target = run / name
            if action not in ("symlink",) and (target.is_symlink() or not target.is_file()):
                continue  # an earlier op replaced or removed it
            corrupt(run, outside, action, name, arg)
            applied += 1
        if applied == 0:
            return
        before, before_out = snapshot(root), snapshot(outside)

        res = run_cli("validate", str(root), "--json")
        assert res.exit_code in (0, 1), res.output
        doc = json.loads(res.output)
        mine = [r for r in doc["runs"] if r["folder"] == run.name]
        found = [f for r in mine for f in r["findings"]] + doc["findings"]
        assert found, f"no finding for {ops}"
        other = next(r for r in doc["runs"] if r["folder"] != run.name)
        assert other["findings"] == []

        res = run_cli("quarantine", str(root), "--json")
        assert res.exit_code in (0, 1), res.output
        run_cli("release", run.name, "--runs-dir", str(root))
        run_cli("audit", "verify", str(root))

        after = snapshot(root)
        for rel, digest in before.items():
            moved = f".quarantine/{rel}"
            assert after.get(rel) == digest or after.get(moved) == digest, rel
        assert snapshot(outside) == before_out  # never written through a link
        assert run_cli("audit", "verify", str(root)).exit_code == 0
    finally:
        jsonl_check.MAX_LINE, jsonl_check.CHUNK = saved
        shutil.rmtree(tmp, ignore_errors=True)


def test_events_file_that_is_a_link_to_dev_zero_is_not_read(tmp_path):
    d = make_run(tmp_path, "r")
    (d / "events.jsonl").unlink()
    os.symlink("/dev/zero", d / "events.jsonl")
    res = run_cli("validate", str(tmp_path), "--json")
    codes = {f["code"] for f in json.loads(res.output)["runs"][0]["findings"]}
    assert res.exit_code == 1 and "RT506" in codes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=3))
# Found by this test: a torn last row plus a summary that is not an object crashed repair.
@example(ops=[("append", "metrics.jsonl", b"\x00"), ("wrong_type", "run.json", ("summary", "none"))])
def test_repair_of_corrupted_runs_never_crashes_nor_loses_bytes(ops):
    tmp = Path(tempfile.mkdtemp(prefix="gov-fuzz-repair-"))
    try:
        outside = tmp / "outside"
        outside.mkdir()
        (outside / "secret").write_bytes(b"outside bytes")
        root = tmp / "runs"
        run = make_run(root, "r0", rows=30)
        for action, name, arg in ops:
            target = run / name
            if action != "symlink" and (target.is_symlink() or not target.is_file()):
                continue
            corrupt(run, outside, action, name, arg)
        before = {rel: (run / rel).read_bytes() for rel in snapshot(run)
                  if not (run / rel).is_symlink()}
        before_out = snapshot(outside)

        res = run_cli("repair", str(root), "--json")
        assert res.exit_code in (0, 1), res.output
        first = {(a["file"], a["action"]): a for a in json.loads(res.output)["actions"]
                 if a["done"]}
        res = run_cli("repair", str(root), "--json")  # a second pass has nothing left to cut
        assert res.exit_code in (0, 1), res.output
        assert not [a for a in json.loads(res.output)["actions"]
                    if a["action"] in ("cut_torn", "cut_torn_lines")]

        for rel, old in before.items():
            path = run / rel
            if rel.endswith(".jsonl") and (f"r0/{rel}", "cut_torn_lines") in first:
                # Torn lines cut from the middle: the original is rebuilt exactly from the
                # kept lines, the lines orphan (at the audited line numbers) and the tail.
                now = path.read_bytes()
                tail_act = first.get((f"r0/{rel}", "cut_torn"))
                tail = (run / tail_act["detail"]["orphan"]).read_bytes() if tail_act else b""
                assert old.endswith(tail), rel
                lines_act = first[(f"r0/{rel}", "cut_torn_lines")]
                cut_at = set(lines_act["detail"]["lines"])
                body = split_lines(old[:len(old) - len(tail)])
                kept = b"".join(x for i, x in enumerate(body, 1) if i not in cut_at)
                cut = b"".join(x for i, x in enumerate(body, 1) if i in cut_at)
                assert (run / lines_act["detail"]["orphan"]).read_bytes() == cut, rel
                assert now.startswith(kept), rel
                names = {lines_act["detail"]["orphan"]} | ({tail_act["detail"]["orphan"]}
                                                           if tail_act else set())
                assert {o.name for o in run.glob(Path(rel).name + ".*.orphan")} == names, rel
            elif rel.endswith(".jsonl"):
                # Cut, never lost: the original is what the file kept (before the events
                # repair appends) followed by the orphaned tail.
                now = path.read_bytes()
                orphan = b"".join(o.read_bytes()
                                  for o in sorted(run.glob(Path(rel).name + ".*.orphan")))
                cut = len(old) - len(orphan)
                assert old.endswith(orphan) and now.startswith(old[:cut]), rel
                assert orphan == b"" or not old[:cut] or old[:cut].endswith(b"\n"), rel
            elif rel != "run.json":  # run.json may be migrated / marked crashed / summarized
                assert path.read_bytes() == old, rel
        assert snapshot(outside) == before_out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
