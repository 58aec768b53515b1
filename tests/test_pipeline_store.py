"""Pipeline state goes through rustorch_tools.store.pipelines: `.pipelines` and every folder
below it are real folders (links refused before anything is written), state files are read
without following links, and a forged execution id in state.json never names a path."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from click.testing import CliRunner

from rustorch_tools.cli import cli
from rustorch_tools.errors import InvalidNameError
from rustorch_tools.store import layout
from rustorch_tools.store.pipelines import ExecFiles, PipelineFiles, read_json
from rustorch_tools.store.runstore import UnsafePathError

NOOP = textwrap.dedent('''
    [pipeline]
    name = "p"
    [stages.a]
    python = "rustorch_tools.pipeline.builtins:noop"
    params = { value = 3 }
    outputs = ["value"]
''')


def _run(tmp_path, runs):
    path = tmp_path / "p.toml"
    path.write_text(NOOP)
    return CliRunner().invoke(cli, ["pipeline", "run", str(path), "--runs-dir", str(runs), "--json"])


def test_state_round_trip_and_atomic_files(tmp_path):
    files = PipelineFiles(tmp_path / "runs", "p")
    assert files.read_state() is None and not (tmp_path / "runs").exists()  # reading creates nothing
    files.write_state({"status": "x", "n": 1})
    assert files.read_state() == {"n": 1, "status": "x"}
    assert oct(os.stat(files.state_path).st_mode & 0o777) == "0o644"
    ex = files.execution("a-0123")
    ex.write("outputs-r.json", {"v": 1})
    ex.publish("outputs-r.json", "result.json")
    assert files.read_exec("a-0123", "result.json") == {"v": 1}
    assert os.stat(ex.path("result.json")).st_ino == os.stat(ex.path("outputs-r.json")).st_ino
    assert [p.name for p in ex.dir.iterdir() if p.name.startswith(".")] == []  # no temp left
    for bad in ("../x", "..", "a/b"):
        with pytest.raises(ValueError):
            files.read_exec(bad, "result.json")
        with pytest.raises(InvalidNameError):
            files.execution(bad)


@pytest.mark.parametrize("where", [layout.PIPELINES_DIR, f"{layout.PIPELINES_DIR}/p",
                                   f"{layout.PIPELINES_DIR}/p/exec"])
def test_a_linked_state_folder_is_refused_and_nothing_is_written_outside(tmp_path, where):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir()
    link = runs / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    result = _run(tmp_path, runs)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "link" in result.output and "Traceback" not in result.output
    files = PipelineFiles(runs, "p")
    with pytest.raises(UnsafePathError, match="link"):  # the writers check on their own too
        files.write_state({"status": "x"}) if where.count("/") < 2 else files.execution("a-1")
    assert list(outside.iterdir()) == []


def test_linked_or_special_state_files_are_errors_not_followed(tmp_path):
    runs = tmp_path / "runs"
    assert _run(tmp_path, runs).exit_code == 0
    files = PipelineFiles(runs, "p")
    secret = tmp_path / "secret.json"
    secret.write_text('{"status": "succeeded", "instances": {}}')
    files.state_path.unlink()
    files.state_path.symlink_to(secret)
    with pytest.raises(ValueError, match="symbolic link"):
        files.read_state()
    result = CliRunner().invoke(cli, ["pipeline", "status", str(tmp_path / "p.toml"), "--runs-dir", str(runs)])
    assert result.exit_code == 2 and "unreadable" in result.output, result.output
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_json(fifo)  # refused at once, never blocked on
    with pytest.raises(UnsafePathError):
        ExecFiles(tmp_path / "no-such-exec")


def test_a_forged_exec_id_in_state_is_ignored(tmp_path):
    runs = tmp_path / "runs"
    assert _run(tmp_path, runs).exit_code == 0
    files = PipelineFiles(runs, "p")
    state = files.read_state()
    (inst,) = state["instances"].values()
    inst["exec_id"], inst["status"] = "../../../escape", "done"
    files.write_state(state)
    result = _run(tmp_path, runs)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["instances"][0]["exec_id"] != "../../../escape"
    assert not (tmp_path / "escape").exists() and not (runs.parent / "escape").exists()
