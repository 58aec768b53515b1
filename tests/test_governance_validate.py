"""validate: one test per finding family, the CLI contract (exit codes, --json, table)."""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from support.governance_synth import make_run, metric_rows, run_doc

from rustorch_tools.cli import cli
from rustorch_tools.governance import jsonl_check
from rustorch_tools.governance.findings import CODES, Severity
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store import compiled_schema as fast_schema
from rustorch_tools.store import schema
from rustorch_tools.store.atomic import atomic_write_json
from rustorch_tools.store.jsonl import encode_row


def codes(report, folder: str | None = None) -> set[str]:
    if folder is None:
        return {f.code for f in report.all_findings()}
    (res,) = [r for r in report.runs if r.folder == folder]
    return {f.code for f in res.findings}


def edit_run_json(d: Path, **changes) -> None:
    doc = json.loads((d / "run.json").read_text())
    doc.update(changes)
    atomic_write_json(d / "run.json", doc)


def test_clean_runs_have_no_findings(tmp_path):
    for i in range(3):
        make_run(tmp_path, f"r{i}", rows=50)
    report = validate_runs(tmp_path, jobs=1)
    assert [f.to_dict() for f in report.all_findings()] == []
    assert report.exit_code() == 0 and report.summary()["runs"] == 3


def test_every_code_is_documented():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "governance.md").read_text()
    for code, info in CODES.items():
        assert f"`{code}`" in doc, code
        assert info.remediation


def test_run_json_problems(tmp_path):
    (make_run(tmp_path, "missing") / "run.json").unlink()
    (make_run(tmp_path, "badjson") / "run.json").write_text("{not json")
    edit_run_json(make_run(tmp_path, "schema"), status="exploded", seed="x")
    edit_run_json(make_run(tmp_path, "newer"), schema_version=7)
    edit_run_json(make_run(tmp_path, "renamed"), run_id="other")
    make_run(tmp_path, "bad name!")
    r = validate_runs(tmp_path, jobs=1)
    assert "RT101" in codes(r, "missing")
    assert "RT102" in codes(r, "badjson")
    assert "RT103" in codes(r, "schema")
    assert "RT105" in codes(r, "newer")
    assert "RT106" in codes(r, "renamed")
    assert "RT107" in codes(r, "bad name!")
    msgs = [f.message for f in r.runs[[x.folder for x in r.runs].index("schema")].findings]
    assert any("status" in m for m in msgs) and any("seed" in m for m in msgs)


def test_legacy_schema_is_migrated_in_memory_and_reported(tmp_path):
    d = make_run(tmp_path, "old")
    legacy = {"run_id": "old", "state": "FINISHED", "start_time": 1.0, "end_time": 2.0,
              "params": {"lr": 0.1}, "tags": ["a"]}
    (d / "run.json").write_text(json.dumps(legacy))
    r = validate_runs(tmp_path, jobs=1)
    (res,) = r.runs
    assert res.schema_from == 0 and res.status == "finished"
    assert "RT104" in codes(r) and r.exit_code() == 0  # a warning, repairable
    assert json.loads((d / "run.json").read_text()) == legacy  # nothing written


def test_corrupt_lines_name_file_and_line(tmp_path):
    d = make_run(tmp_path, "r", rows=30)
    lines = (d / "metrics.jsonl").read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b'"loss":', b'"lost":')  # CRC no longer matches
    lines[9] = b"\x00\xffgarbage"
    lines[12] = lines[12][:-19] + b"}"  # no _crc at all
    (d / "metrics.jsonl").write_bytes(b"\n".join(lines))
    r = validate_runs(tmp_path, jobs=1)
    bad = sorted((f.line, f.code) for f in r.all_findings())
    assert bad == [(5, "RT201"), (10, "RT201"), (13, "RT201")]
    f = next(r.all_findings())
    assert f.file == "r/metrics.jsonl" and f.run_id == "r"
    assert "CRC" in f.message


def test_steps_going_backwards(tmp_path):
    rows = metric_rows(10) + metric_rows(5, step0=3)
    make_run(tmp_path, "r", metrics=rows)
    r = validate_runs(tmp_path, jobs=1)
    (f,) = [f for f in r.all_findings() if f.code == "RT203"]
    assert f.line == 11 and "step 3 after step 9" in f.message


def test_steps_checked_per_rank(tmp_path):
    rows = b"".join(encode_row({"step": s, "time": 1.0, "rank": k, "loss": 1.0})
                    for s in range(5) for k in (0, 1))
    make_run(tmp_path, "ddp", metrics=rows)
    assert "RT203" not in codes(validate_runs(tmp_path, jobs=1))
    rows += encode_row({"step": 2, "time": 1.0, "rank": 1, "loss": 1.0})
    (tmp_path / "ddp" / "metrics.jsonl").write_bytes(rows)
    assert "RT203" in codes(validate_runs(tmp_path, jobs=1))


def test_nonfinite_values(tmp_path):
    good = metric_rows(3) + encode_row({"step": 3, "time": 2.0, "loss": float("nan")})
    make_run(tmp_path, "diverged", metrics=good)
    body = b'{"step":4,"time":2.0,"loss":NaN}'
    raw = body[:-1] + b',"_crc":"%08x"}\n' % zlib.crc32(body)
    make_run(tmp_path, "rawnan", metrics=metric_rows(4) + raw)
    body = b'{"step":4,"time":2.0,"loss":"nan"}'
    undeclared = body[:-1] + b',"_crc":"%08x"}\n' % zlib.crc32(body)
    make_run(tmp_path, "undeclared", metrics=metric_rows(4) + undeclared)
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "diverged") == {"RT205"}
    assert "RT204" in codes(r, "rawnan")
    assert "RT204" in codes(r, "undeclared")


def test_wrong_types_in_rows(tmp_path):
    extra = b"".join(encode_row(row) for row in (
        {"step": 20, "time": 1.0, "loss": "high"},
        {"step": 21, "time": "noon", "loss": 1.0},
        {"step": -1, "time": 1.0},
        {"step": 22, "time": 1.0, "_secret": 1},
        {"step": 23, "time": 1.0, "loss": [1, 2]},
    ))
    make_run(tmp_path, "r", metrics=metric_rows(20) + extra)
    r = validate_runs(tmp_path, jobs=1)
    assert [(f.code, f.line) for f in r.all_findings()] == [("RT206", n) for n in
                                                            range(21, 26)]


def test_torn_tail_is_error_unless_run_is_live(tmp_path):
    for name, status in (("dead", "finished"), ("live", "running")):
        d = make_run(tmp_path, name, status=status)
        with open(d / "metrics.jsonl", "ab") as fh:
            fh.write(encode_row({"step": 99, "time": 1.0, "loss": 1.0})[:17])
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "dead") == {"RT202"}
    assert codes(r, "live") == {"RT208"}  # being written: a note, never "corrupt"
    (res,) = [x for x in r.runs if x.folder == "dead"]
    assert res.torn == {"metrics.jsonl": (tmp_path / "dead" / "metrics.jsonl").stat().st_size
                        - 17}


def test_stale_heartbeat_is_crashed(tmp_path):
    d = make_run(tmp_path, "r", status="running")
    edit_run_json(d, heartbeat_at=time.time() - 3600)
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r) == {"RT401"} and r.runs[0].status == "crashed" and not r.runs[0].live


def test_status_consistency_warnings(tmp_path):
    edit_run_json(make_run(tmp_path, "noend"), ended_at=None)
    edit_run_json(make_run(tmp_path, "noerr", status="failed"), error=None)
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "noend") == {"RT402"} and codes(r, "noerr") == {"RT403"}
    assert r.exit_code() == 0 and r.exit_code(strict=True) == 1


def test_manifest_digests(tmp_path):
    ck = "checkpoints/ckpt-00000001.pt"
    (make_run(tmp_path, "tampered") / ck).write_bytes(b"weightz")
    (make_run(tmp_path, "gone") / ck).unlink()
    (make_run(tmp_path, "extra") / "checkpoints" / "stray.pt").write_bytes(b"x")
    (make_run(tmp_path, "nomanifest") / "manifest.json").unlink()
    (make_run(tmp_path, "badmanifest") / "manifest.json").write_text('{"files": 3}')
    d = make_run(tmp_path, "unverified")
    doc = json.loads((d / "manifest.json").read_text())
    doc["files"][ck]["verified"] = False
    atomic_write_json(d / "manifest.json", doc)
    (make_run(tmp_path, "pointer") / "checkpoints" / "latest").write_text("ckpt-00000001.pt")
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "tampered") == {"RT303"}
    assert codes(r, "gone") == {"RT304"}
    assert codes(r, "extra") == {"RT305"}
    assert codes(r, "nomanifest") == {"RT301"}
    assert "RT302" in codes(r, "badmanifest")
    assert codes(r, "unverified") == {"RT306"}
    assert codes(r, "pointer") == set()


def test_summary_must_match_last_row(tmp_path):
    edit_run_json(make_run(tmp_path, "r"), summary={"step": 19, "metrics": {"loss": 9.0, "acc": 0.95}})
    assert codes(validate_runs(tmp_path, jobs=1)) == {"RT404"}


def test_lineage_and_duplicates(tmp_path):
    make_run(tmp_path, "root")
    make_run(tmp_path, "child", parent="root")
    make_run(tmp_path, "orphan", parent="ghost")
    make_run(tmp_path, "a", parent="b")
    make_run(tmp_path, "b", parent="c")
    make_run(tmp_path, "c", parent="a")
    edit_run_json(make_run(tmp_path, "copy"), run_id="root")
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "child") == set()
    assert codes(r, "orphan") == {"RT501"}
    for x in "abc":
        assert codes(r, x) == {"RT502"}
    assert codes(r, "root") == {"RT503"} and codes(r, "copy") == {"RT106", "RT503"}


def test_unknown_entries_and_symlinks(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_bytes(b"s" * 10)
    d = make_run(tmp_path, "r")
    (d / "notes.txt").write_text("hi")
    os.symlink(outside / "secret", d / "checkpoints" / "evil.pt")
    os.symlink(outside / "secret", d / "events.jsonl.bak")
    os.symlink(outside, tmp_path / "linked-run")
    (tmp_path / "README").write_text("x")
    (tmp_path / ".mystery").mkdir()
    os.mkfifo(d / "pipe")  # must never be opened (would block)
    r = validate_runs(tmp_path, jobs=1)
    assert codes(r, "r") == {"RT504", "RT506", "RT901"}
    top = {(f.code, f.file) for f in r.findings}
    assert top == {("RT506", "linked-run"), ("RT505", "README"), ("RT505", ".mystery")}


def test_huge_line_is_reported_without_buffering_it(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl_check, "MAX_LINE", 1000)
    monkeypatch.setattr(jsonl_check, "CHUNK", 256)
    rows = metric_rows(5) + b"x" * 5000 + b"\n" + metric_rows(5, step0=5)
    make_run(tmp_path, "r", metrics=rows)
    r = validate_runs(tmp_path, jobs=1)
    assert [(f.code, f.line) for f in r.all_findings()] == [("RT201", 6)]


def test_small_chunks_give_the_same_answer(tmp_path, monkeypatch):
    d = make_run(tmp_path, "r", rows=200)
    data = bytearray((d / "metrics.jsonl").read_bytes())
    data[5000] ^= 1
    (d / "metrics.jsonl").write_bytes(bytes(data) + metric_rows(3))
    want = [(f.code, f.line) for f in validate_runs(tmp_path, jobs=1).all_findings()]
    monkeypatch.setattr(jsonl_check, "CHUNK", 97)
    got = [(f.code, f.line) for f in validate_runs(tmp_path, jobs=1).all_findings()]
    # the flipped line, the descent after it, the summary that no longer matches
    assert got == want and [c for c, _ in want] == ["RT201", "RT203", "RT404"]


def test_process_pool_matches_serial(tmp_path):
    for i in range(20):
        d = make_run(tmp_path, f"r{i:02d}", rows=30)
        if i % 3 == 0:
            with open(d / "metrics.jsonl", "ab") as fh:
                fh.write(b"junk\n")
    one = validate_runs(tmp_path, jobs=1)
    two = validate_runs(tmp_path, jobs=2)
    assert [r.to_dict() for r in one.runs] == [r.to_dict() for r in two.runs]
    assert one.summary()["runs_with_errors"] == 7


# -- CLI ------------------------------------------------------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_exit_codes_and_table(tmp_path):
    make_run(tmp_path, "good")
    res = invoke("validate", str(tmp_path))
    assert res.exit_code == 0 and "No findings." in res.output
    with open(tmp_path / "good" / "metrics.jsonl", "ab") as fh:
        fh.write(b"junk\n")
    res = invoke("validate", str(tmp_path))
    assert res.exit_code == 1
    assert "RT201" in res.output and "good/metrics.jsonl:21" in res.output
    assert "Remediation:" in res.output
    assert invoke("validate", str(tmp_path / "nope")).exit_code == 2
    assert invoke("validate", str(tmp_path), "--jobs", "0").exit_code == 2
    assert invoke("validate", str(tmp_path), "--report", str(tmp_path / "r.pdf")).exit_code == 2


def test_cli_strict_turns_warnings_into_failure(tmp_path):
    edit_run_json(make_run(tmp_path, "r"), ended_at=None)
    assert invoke("validate", str(tmp_path)).exit_code == 0
    assert invoke("validate", str(tmp_path), "--strict").exit_code == 1


def test_cli_json_is_stable(tmp_path):
    make_run(tmp_path, "r")
    (tmp_path / "r" / "run.json").write_text("[]")
    res = invoke("validate", str(tmp_path), "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["exit_code"] == 1
    assert set(doc) == {"format", "version", "runs_dir", "checked_at", "exit_code", "summary",
                        "findings", "runs", "quarantine", "audit"}
    assert doc["format"] == "rustorch-tools/validate" and doc["version"] == 1
    (run,) = doc["runs"]
    (f,) = run["findings"]
    assert set(f) == {"code", "severity", "title", "message", "run_id", "file", "line",
                      "remediation", "repairable"}
    assert f["code"] == "RT102" and f["severity"] == "error" and f["file"] == "r/run.json"


def test_validate_writes_an_audit_entry(tmp_path):
    make_run(tmp_path, "r")
    invoke("validate", str(tmp_path))
    log = (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["command"] == "validate"


def test_severity_order():
    assert Severity.ERROR > Severity.WARNING > Severity.INFO


@pytest.mark.parametrize("cmd", [["validate"], ["quarantine"], ["release"], ["repair"],
                                 ["audit"], ["audit", "verify"]])
def test_every_command_has_help(cmd):
    res = invoke(*cmd, "--help")
    assert res.exit_code == 0 and "Usage:" in res.output


# -- fast paths agree with the reference implementations ----------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=5) | st.sampled_from(["running", "fork", "a" * 129, "ok-id", "a\n"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["run_id", "relation", "checkpoint", "type", "message", "x"]), inner,
        max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_run_check_never_accepts_what_the_schema_rejects(data):
    doc = run_doc("r", status=data.draw(st.sampled_from(["running", "failed", "finished"])),
                  parent=data.draw(st.sampled_from([None, "p"])))
    if data.draw(st.booleans()):
        doc["ranks"] = {"main": "running", "1": "finished"}
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(st.sampled_from(sorted(doc) + ["extra", "ranks"]))
        if data.draw(st.booleans()) and key in doc and isinstance(doc[key], dict) and doc[key]:
            sub = data.draw(st.sampled_from(sorted(doc[key])))
            doc[key] = {**doc[key], sub: data.draw(_JSON_VALUES)}
        elif data.draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = data.draw(_JSON_VALUES)
    if fast_schema.run_doc_ok(doc):
        assert schema.validate_document("run", doc) == []


def test_fast_checks_accept_real_documents(tmp_path):
    d = make_run(tmp_path, "r")
    assert fast_schema.run_doc_ok(json.loads((d / "run.json").read_text()))
    assert fast_schema.manifest_ok(json.loads((d / "manifest.json").read_text()))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fast_manifest_check_never_accepts_what_the_schema_rejects(data):
    entry = {"sha256": "a" * 64, "size": 3, "added_at": 1.0, "verified": True}
    doc = {"schema_version": 1, "files": {"checkpoints/a.pt": dict(entry)}}
    path = data.draw(st.sampled_from(["checkpoints/a.pt", "artifacts/../x", "other/x",
                                      "checkpoints/.", "artifacts/a/b", "checkpoints/a\n"]))
    e = dict(entry)
    if data.draw(st.booleans()):
        e[data.draw(st.sampled_from([*entry, "extra"]))] = data.draw(_JSON_VALUES)
    doc["files"][path] = e
    if fast_schema.manifest_ok(doc):
        assert schema.validate_document("manifest", doc) == []


def test_clean_metrics_take_the_bulk_path(tmp_path, monkeypatch):
    make_run(tmp_path, "r", rows=300)
    ddp = b"".join(encode_row({"step": s, "time": 1.0, "rank": k, "loss": 0.5})
                   for s in range(100) for k in (1, 0, 2))
    make_run(tmp_path, "ddp", metrics=ddp)

    def boom(*a):
        raise AssertionError("slow path used for a clean metrics file")

    monkeypatch.setattr(jsonl_check.JsonlChecker, "_slow_line",
                        lambda self, line, n: boom() if self.kind == "metrics" else None)
    assert list(validate_runs(tmp_path, jobs=1).all_findings()) == []


def test_runs_written_by_the_logging_api_validate_clean(tmp_path):
    import warnings

    import rustorch_tools

    art = tmp_path / "plot.txt"
    art.write_text("plot")
    root = tmp_path / "runs"
    with rustorch_tools.start_run(root=root, name="a", config={"lr": 0.1}, seed=1) as run:
        for i in range(50):
            run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 50}, step=i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.log_metrics({"loss": float("nan")}, step=50)
        run.log_artifact(art)
        parent = run.run_id
    with rustorch_tools.start_run(root=root, name="b", parent=parent) as child:
        child.log_metrics({"loss": 0.5}, step=0)
    ddp = "ddp-run"
    for rank in (0, 1):
        with rustorch_tools.start_run(root=root, run_id=ddp, rank=rank) as r:
            for i in range(10):
                r.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
    report = validate_runs(root, jobs=1)
    found = [(f.run_id, f.code) for f in report.all_findings()]
    assert found == [(parent, "RT205")], [f.to_dict() for f in report.all_findings()]
    assert len(report.runs) == 3


_ROW = st.fixed_dictionaries(
    {"step": st.one_of(st.integers(0, 50), st.integers(0, 10**20), st.just(-1)),
     "time": st.one_of(st.floats(0, 2e9), st.floats(-5, 0), st.just(0.0))},
    optional={"rank": st.integers(0, 2), "bad\x01name": st.just(1), "x" * 201: st.just(2), "": st.just(3), "_u": st.just(4), "y" * 200: st.just(5),
              "loss": st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                st.integers(-10**20, 10**20), st.text(max_size=3)),
              "acc": st.floats(-1e300, 1e300), "k\"ey": st.integers()})


@settings(max_examples=250, deadline=None)
@given(rows=st.lists(_ROW, min_size=1, max_size=30), flip=st.integers(0, 10**6),
       ranked=st.sampled_from([None, 1, 3]))
def test_bulk_path_agrees_with_line_by_line(rows, flip, ranked):
    if ranked:  # every row from one of `ranked` DDP ranks (the bulk path handles that)
        rows = [{"step": r["step"], "time": r["time"], "rank": i % ranked,
                 **{k: v for k, v in r.items() if k not in ("step", "time", "rank")}}
                for i, r in enumerate(rows)]
    data = bytearray(b"".join(encode_row(r) for r in rows))
    if flip % 3 == 0:
        data[flip % len(data)] ^= 0x20
    data = bytes(data) if bytes(data).endswith(b"\n") else bytes(data) + b"\n"

    def run(fast: bool):
        checker = jsonl_check.JsonlChecker("metrics", "r", "r/metrics.jsonl")
        if not fast:
            checker._fast = lambda *a: False
        saved = jsonl_check._MIN_SPLIT
        jsonl_check._MIN_SPLIT = 2 if fast else saved  # exercise the halving too
        try:
            checker.feed(data, 1)
        finally:
            jsonl_check._MIN_SPLIT = saved
        return ([f.to_dict() for f in checker.finish()], checker.stats.rows,
                checker.last_step, json.dumps(checker.stats.last_row, sort_keys=True))

    assert run(True) == run(False)


def test_progress_bar_only_on_a_tty(monkeypatch):
    import sys

    from rustorch_tools.governance import validate as vmod

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    items = [1, 2]
    assert vmod._progress(2)(items) is items
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    wrapped = vmod._progress(2)(items)
    assert type(wrapped).__name__ == "tqdm" and list(wrapped) == items


def test_module_entry_point_exit_codes(tmp_path):
    import subprocess
    import sys

    make_run(tmp_path, "r")
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "rustorch_tools", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("validate", str(tmp_path), "--json").returncode == 0
    (tmp_path / "r" / "run.json").write_text("{")
    p = run("validate", str(tmp_path))
    assert p.returncode == 1 and "RT102" in p.stdout and "Traceback" not in p.stderr
    p = run("validate", str(tmp_path / "missing"))
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_one_bad_line_in_a_big_chunk_keeps_the_rest_on_the_bulk_path(tmp_path, monkeypatch):
    d = make_run(tmp_path, "r", rows=5000)
    data = bytearray((d / "metrics.jsonl").read_bytes())
    data[len(data) // 2] ^= 1
    (d / "metrics.jsonl").write_bytes(bytes(data))
    slow = []
    real = jsonl_check.JsonlChecker._slow_line
    monkeypatch.setattr(jsonl_check.JsonlChecker, "_slow_line",
                        lambda self, line, n: (slow.append(n), real(self, line, n)))
    found = [(f.code, f.line) for f in validate_runs(tmp_path, jobs=1).all_findings()]
    assert [c for c, _ in found] == ["RT201"]
    metrics_slow = [n for n in slow if n > 2]  # events.jsonl has 2 lines
    assert 0 < len(metrics_slow) <= jsonl_check._MIN_SPLIT


def test_validate_with_a_linked_audit_folder_reports_and_writes_nothing_there(
        tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    make_run(tmp_path, "r")
    os.symlink(outside, tmp_path / ".audit")
    res = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert res.exit_code == 1 and "RT506" in res.output
    assert list(outside.iterdir()) == []


def test_fast_check_accepts_ddp_runs_with_ranks(tmp_path):
    import rustorch_tools

    runs_ = [rustorch_tools.start_run(tmp_path, run_id="ddp", rank=r) for r in (0, 1)]
    for r in runs_:
        r.log_metrics({"loss": 1.0}, step=0)
    runs_[1].finish()
    doc = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert doc["ranks"] == {"0": "running", "1": "finished"}
    assert fast_schema.run_doc_ok(doc)  # takes the fast path, no jsonschema call
    runs_[0].finish()
    doc = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert fast_schema.run_doc_ok(doc) and schema.validate_document("run", doc) == []
    assert not fast_schema.run_doc_ok({**doc, "ranks": {"x": "running"}})
    assert not fast_schema.run_doc_ok({**doc, "ranks": {"0": "crashed"}})
