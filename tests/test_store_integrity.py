"""Lost or tampered data is never "clean"; nothing outside RUNS_DIR is ever written.

One test per attack class of issue 12 (sections 1 and 2): loss after finish, summaries ahead
of rows, swapped or forged checkpoints, all-or-nothing loads, resume, write-ahead audit, lost
audit trails, and links (symbolic and hard) at every output path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings

import pytest
import torch
from click.testing import CliRunner
from support.ckpt_forge import reseal

import rustorch_tools
from rustorch_tools import checkpoint
from rustorch_tools.cli import cli
from rustorch_tools.errors import CorruptCheckpointError, LinkedFileError
from rustorch_tools.governance.quarantine import quarantine_runs
from rustorch_tools.governance.repair import repair_runs
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store import audit, manifest
from rustorch_tools.store.runstore import RunStore


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def codes(root):
    return {f.code for f in validate_runs(root, jobs=1).all_findings()}


def finished_run(root, rows=20, name="r"):
    with rustorch_tools.start_run(root, name=name, flush_every=1000) as run:
        for i in range(rows):
            run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / rows}, step=i)
    return run.dir


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. loss after finish ------------------------------------------------------------------

@pytest.mark.parametrize("attack", ["delete", "empty", "cut_rows", "edit_row"])
def test_loss_after_finish_is_an_error_that_repair_keeps(tmp_path, attack):
    d = finished_run(tmp_path)
    assert codes(tmp_path) == set()
    metrics = d / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    if attack == "delete":
        metrics.unlink()
    elif attack == "empty":
        metrics.write_bytes(b"")
    elif attack == "cut_rows":
        metrics.write_bytes(b"".join(lines[:12]))  # cut at a line boundary: every line valid
    else:  # a row re-encoded with a valid CRC: only the recorded digest can tell
        from rustorch_tools.store.jsonl import decode_line, encode_row
        row = decode_line(lines[3])
        row["loss"] = 0.0
        metrics.write_bytes(b"".join(lines[:3] + [encode_row(row)] + lines[4:]))
    summary_before = json.loads((d / "run.json").read_text())["summary"]
    found = codes(tmp_path)
    assert found & {"RT210", "RT211", "RT212"}, found
    repair_runs(tmp_path)
    assert json.loads((d / "run.json").read_text())["summary"] == summary_before  # evidence kept
    assert codes(tmp_path) & {"RT210", "RT211", "RT212"}  # still flagged after repair
    assert invoke("validate", tmp_path, "--strict").exit_code == 1


def test_rows_lost_without_a_record_still_flagged_by_the_summary(tmp_path):
    d = finished_run(tmp_path)
    doc = manifest.read_manifest(d)
    del doc["logs"]  # a run written before logs were recorded
    manifest.write_manifest(d, doc)
    lines = (d / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    (d / "metrics.jsonl").write_bytes(b"".join(lines[:5]))
    assert "RT212" in codes(tmp_path)
    repair_runs(tmp_path)
    assert "RT212" in codes(tmp_path)
    assert json.loads((d / "run.json").read_text())["summary"]["step"] == 19


def test_regenerated_summary_keeps_the_old_run_json(tmp_path):
    d = finished_run(tmp_path)
    doc = json.loads((d / "run.json").read_text())
    doc["summary"]["metrics"]["loss"] = 123.0  # stale, not ahead: provably fixable
    (d / "run.json").write_text(json.dumps(doc))
    before = (d / "run.json").read_bytes()
    out = repair_runs(tmp_path)
    (act,) = [a for a in out.actions if a.action == "regenerate_summary"]
    assert (d / act.detail["previous"]["orphan"]).read_bytes() == before


# -- 1. checkpoints ------------------------------------------------------------------------

def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3)


def test_checkpoint_swapped_for_another_valid_one_is_refused(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="a") as run:
        run.save_checkpoint(model=_model(0), step=1)
        saved = run.save_checkpoint(model=_model(1), step=2)
    other = checkpoint.save_checkpoint(tmp_path / "elsewhere.safetensors", model=_model(7), step=2)
    shutil.copyfile(other.path, saved.path)  # a valid checkpoint, not the run's
    with pytest.warns(UserWarning, match="newest intact"):
        ck = checkpoint.load_checkpoint(run.dir, model=_model(3))
    assert ck.step == 1  # the newest checkpoint whose digest the run recorded
    with pytest.raises(CorruptCheckpointError, match="recorded"):
        checkpoint.load_checkpoint(saved.path)


def test_rebuilt_manifest_never_vouches_for_a_tampered_checkpoint(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="a") as run:
        saved = run.save_checkpoint(model=_model(0), step=1)
    other = checkpoint.save_checkpoint(tmp_path / "x.safetensors", model=_model(5), step=1)
    shutil.copyfile(other.path, saved.path)
    (run.dir / "manifest.json").unlink()
    out = repair_runs(tmp_path)
    (act,) = [a for a in out.actions if a.action == "rebuild_manifest"]
    assert act.detail["refused"] == ["checkpoints/" + saved.path.name]
    with pytest.raises(CorruptCheckpointError):
        checkpoint.load_checkpoint(run.dir, model=_model(3))
    assert codes(tmp_path) & {"RT305", "RT210", "RT211"}


def _forge(path, mutate):
    reseal(path, mutate)  # both digest tails recomputed: only the checks can refuse it


def _first_tensor(header):
    return next(v for k, v in header.items()
                if k not in ("__metadata__", "__rustorch_sha256__", "__rustorch_blake3__"))


@pytest.mark.parametrize("forgery", ["float_offsets", "negative_shape", "huge_int", "deep",
                                     "very_deep", "bool_shape"])
def test_forged_headers_raise_corrupt_checkpoint_error(tmp_path, forgery):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors", model=_model(), step=1)

    def mutate(h):
        t = _first_tensor(h)
        if forgery == "float_offsets":
            t["data_offsets"] = [float(x) for x in t["data_offsets"]]
        elif forgery == "negative_shape":
            t["shape"] = [-t["shape"][0], -t["shape"][1]] if len(t["shape"]) == 2 else [-1]
        elif forgery == "huge_int":
            t["shape"] = [10 ** 40]
        elif forgery == "bool_shape":
            t["shape"] = [True] * len(t["shape"])
        else:
            levels = 500 if forgery == "deep" else 100_000
            text = h["__metadata__"]["rustorch_checkpoint"]
            assert '"extra":null' in text
            h["__metadata__"]["rustorch_checkpoint"] = text.replace(
                '"extra":null', '"extra":' + "[" * levels + "1" + "]" * levels)

    _forge(saved.path, mutate)
    for verify in ("fast", "full"):
        with pytest.raises(CorruptCheckpointError) as info:
            checkpoint.load_checkpoint(saved.path, verify=verify)
        assert "does not match" not in str(info.value)  # refused by the checks, not a digest


def test_mismatched_shapes_leave_the_model_unchanged(tmp_path):
    saved = checkpoint.save_checkpoint(tmp_path / "c.safetensors",
                                       model=torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)))
    target = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 5))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(checkpoint.CheckpointMismatchError):
        checkpoint.load_checkpoint(saved.path, model=target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


# -- 1. resume ------------------------------------------------------------------------------

def test_reopened_run_continues_at_the_next_step(tmp_path):
    with rustorch_tools.start_run(tmp_path, run_id="r") as run:
        for _ in range(5):
            run.log_metrics({"loss": 1.0})
    with rustorch_tools.start_run(tmp_path, run_id="r") as run:
        run.log_metrics({"loss": 0.5})
    steps = [r["step"] for r in RunStore(tmp_path).run("r").iter_metrics()]
    assert steps == [0, 1, 2, 3, 4, 5]
    assert codes(tmp_path) == set()


def test_run_resumed_from_an_older_checkpoint_validates_clean(tmp_path):
    model = _model()
    with rustorch_tools.start_run(tmp_path, run_id="r") as run:
        for i in range(10):
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
            if i == 4:
                run.save_checkpoint(model=model, step=i, keep_last=None)
        run.save_checkpoint(model=model, step=9, keep_last=None)
    (run.dir / "checkpoints" / "latest").unlink()  # resume from the older one on purpose
    with rustorch_tools.start_run(tmp_path, run_id="r") as run:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ck = checkpoint.load_checkpoint(run.dir / "checkpoints" / "ckpt-0000000004.safetensors",
                                            model=model)
        run.rewind(ck.step, checkpoint=ck.path.name)
        for i in range(ck.step + 1, 8):
            run.log_metrics({"loss": 0.1}, step=i)
    found = {f.code for f in validate_runs(tmp_path, jobs=1).all_findings()}
    assert not found & {"RT203", "RT212", "RT404", "RT210"}, found
    with rustorch_tools.start_run(tmp_path, run_id="r") as run:  # continues after the rewind
        run.log_metrics({"loss": 0.05})
    assert [r["step"] for r in run.files.iter_metrics()][-1] == 8
    found = {f.code for f in validate_runs(tmp_path, jobs=1).all_findings()}
    assert not found & {"RT203", "RT212", "RT404", "RT210"}, found


# -- 1. audit -------------------------------------------------------------------------------

def test_quarantine_move_is_audited_before_it_happens(tmp_path, monkeypatch):
    d = finished_run(tmp_path, name="bad")
    (d / "metrics.jsonl").write_bytes(b"garbage\n")

    def killed(*a, **k):
        raise KeyboardInterrupt  # stands for kill -9 right before the rename

    monkeypatch.setattr(os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        quarantine_runs(tmp_path)
    log = [json.loads(x) for x in (tmp_path / ".audit" / "log.jsonl").read_text().splitlines()]
    assert [e["command"] for e in log] == ["quarantine-move"]
    assert d.is_dir()


@pytest.mark.parametrize("loss", ["log", "audit_dir"])
def test_lost_audit_trail_is_detected_and_not_restarted(tmp_path, loss):
    store = RunStore(tmp_path)
    store.audit_append("validate", {})
    if loss == "log":
        (tmp_path / ".audit" / "log.jsonl").unlink()
    else:
        shutil.rmtree(tmp_path / ".audit")
    assert not store.audit_verify().ok
    with pytest.raises(audit.AuditChainError):
        store.audit_append("validate", {})
    assert invoke("audit", "verify", tmp_path).exit_code == 1


# -- 1. write errors ------------------------------------------------------------------------

def test_flush_error_keeps_the_batch_and_raises(tmp_path, monkeypatch):
    run = rustorch_tools.start_run(tmp_path, name="r", flush_every=10_000)
    for i in range(50):
        run.log_metrics({"loss": float(i)}, step=i)
    real = run.files.append_metrics

    def full(data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run.files, "append_metrics", full)
    with pytest.raises(OSError):
        run.flush()
    monkeypatch.setattr(run.files, "append_metrics", real)
    run.finish()
    steps = [r["step"] for r in run.files.iter_metrics()]
    assert steps == list(range(50))


# -- 2. links -------------------------------------------------------------------------------

def test_repair_never_truncates_a_hard_linked_file(tmp_path):
    d = finished_run(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jsonl"
    with open(d / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"step":99')  # torn tail
    os.link(d / "metrics.jsonl", outside)
    before = outside.read_bytes()
    repair_runs(tmp_path)
    assert outside.read_bytes() == before
    assert "RT506" in codes(tmp_path)
    outside.unlink()


def test_validate_report_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    runs_dir = tmp_path / "runs"
    finished_run(runs_dir)
    target = tmp_path / "precious.md"
    target.write_text("keep me")
    link = tmp_path / "report.md"
    link.symlink_to(target)
    assert invoke("validate", runs_dir, "--report", link).exit_code == 0
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and "rustorch" in link.read_text().lower()
    assert (link.stat().st_mode & 0o777) == 0o644 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_export_output_is_0644_and_replaces_links(tmp_path):
    runs_dir = tmp_path / "runs"
    d = finished_run(runs_dir)
    target = tmp_path / "precious.csv"
    target.write_text("keep me")
    out = tmp_path / "out.csv"
    out.symlink_to(target)
    res = invoke("export", d, "-o", out)
    assert res.exit_code == 0, res.output
    assert target.read_text() == "keep me" and not out.is_symlink()
    assert (out.stat().st_mode & 0o777) == 0o644 & ~_umask()


def test_analytics_index_never_written_through_links(tmp_path):
    runs_dir = tmp_path / "runs"
    finished_run(runs_dir, name="a")
    finished_run(runs_dir, name="b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (runs_dir / ".index").symlink_to(outside)
    ids = sorted(p.name for p in RunStore(runs_dir).iter_run_dirs())
    res = invoke("compare", ids[0], ids[1], "--runs-dir", runs_dir)
    assert res.exit_code in (0, 1), res.output
    assert list(outside.iterdir()) == []
    # a foreign SQLite file planted as the index gets no tables
    (runs_dir / ".index").unlink()
    (runs_dir / ".index").mkdir()
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"")
    (runs_dir / ".index" / "analytics.sqlite").symlink_to(foreign)
    invoke("compare", ids[0], ids[1], "--runs-dir", runs_dir)
    assert foreign.read_bytes() == b""


def test_compare_through_a_symlinked_run_writes_nothing_there(tmp_path):
    real = tmp_path / "real"
    a = finished_run(real, name="a")
    b = finished_run(real, name="b")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a").symlink_to(a)
    res = invoke("compare", mine / "a", b)
    assert res.exit_code in (0, 1), res.output
    assert not (real / ".index").exists()


def test_artifacts_and_checkpoints_refuse_symlinked_folders(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    src = tmp_path / "f.txt"
    src.write_text("x")
    run = rustorch_tools.start_run(tmp_path / "runs", name="r")
    for sub in ("artifacts", "checkpoints"):
        shutil.rmtree(run.dir / sub)
        (run.dir / sub).symlink_to(outside)
    with pytest.raises(LinkedFileError):
        run.log_artifact(src)
    with pytest.raises(LinkedFileError):
        run.save_checkpoint(model=_model(), step=0)
    assert list(outside.iterdir()) == []
    for sub in ("artifacts", "checkpoints"):
        (run.dir / sub).unlink()
    run.finish()


def test_quarantine_refuses_a_folder_that_holds_a_runs_dir(tmp_path):
    nested = tmp_path / "nested"
    finished_run(nested, name="inner")
    (nested / "stray.txt").write_text("x")
    out = quarantine_runs(tmp_path)
    assert not out.moved and nested.is_dir()


# -- 1. liveness ----------------------------------------------------------------------------

_WRITER = """
import sys, time, rustorch_tools
run = rustorch_tools.start_run(sys.argv[1], run_id="w", heartbeat_interval_s=0.05)
run.log_metrics({"loss": 1.0}, step=0)
run.flush()
print("ready", flush=True)
time.sleep(60)
"""


def test_suspended_writer_is_alive_and_a_dead_one_crashed(tmp_path):
    import signal
    import subprocess
    import sys

    from rustorch_tools.store import runs

    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout.readline().strip() == b"ready"
        os.kill(proc.pid, signal.SIGSTOP)
        files = RunStore(tmp_path).run("w")
        files.update(lambda d: d.update(heartbeat_at=d["heartbeat_at"] - 3600))
        assert not runs.is_stale(files.read())  # old heartbeat, but the process exists
        assert "RT401" not in codes(tmp_path)
        assert quarantine_runs(tmp_path).moved == []
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    files.update(lambda d: d.update(heartbeat_at=__import__("time").time()))
    assert runs.is_stale(files.read())  # fresh heartbeat, but the writer is gone


@pytest.mark.filterwarnings("ignore:run .*background writer failed")
def test_writer_whose_run_was_moved_fails_clearly(tmp_path):
    from rustorch_tools.errors import RunNotFoundError

    run = rustorch_tools.start_run(tmp_path / "runs", name="r")
    run.log_metrics({"loss": 1.0}, step=0)
    run.flush()
    os.rename(run.dir, tmp_path / "elsewhere")
    run.log_metrics({"loss": 1.0}, step=1)
    with pytest.raises(RunNotFoundError, match="moved or deleted"):
        run.flush()
    run._closed = True


def test_errors_name_the_users_path_not_a_temp_file(tmp_path):
    res = CliRunner().invoke(cli, ["validate", str(tmp_path), "--report",
                                   str(tmp_path / "missing-dir" / "r.md")])
    assert res.exit_code == 2
    assert "missing-dir/r.md" in res.output and ".tmp-" not in res.output
