"""What every command shares (rustorch_tools/cli.py): RUNS_DIR as the first argument or from
$RUSTORCH_RUNS_DIR, the older option spellings as aliases, runs named by id, unique prefix or
name, tables through tabulate, --json, and errors that name the user's path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import rustorch_tools
from rustorch_tools.cli import cli
from rustorch_tools.errors import InvalidNameError, RunNotFoundError
from rustorch_tools.store import atomic
from rustorch_tools.store.select import AmbiguousRunError, select_run


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, str]:
    """Three finished runs: two named "mnist", one "cifar"; returns name -> run id."""
    ids = {}
    for i, name in enumerate(("mnist", "mnist", "cifar")):
        with rustorch_tools.start_run(tmp_path / "runs", name=name, run_id=f"{i}{i}-{name}-{i}") as run:
            for step in range(3):
                run.log_metrics({"loss": 1.0 / (step + 1 + i)}, step=step)
        ids[f"{name}{i}"] = run.run_id
    return ids


def _invoke(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, args, env={"RUSTORCH_RUNS_DIR": None, **(env or {})})
    finally:
        os.chdir(old)


def test_select_run_by_id_prefix_and_name(tmp_path, runs):
    root = tmp_path / "runs"
    assert select_run(root, runs["cifar2"]).name == runs["cifar2"]
    assert select_run(root, "22").name == runs["cifar2"]          # unique prefix
    assert select_run(root, "cifar").name == runs["cifar2"]       # name
    with pytest.raises(AmbiguousRunError, match="named 'mnist'"):
        select_run(root, "mnist")
    with pytest.raises(RunNotFoundError, match=f"no run 'nope' in {root}"):
        select_run(root, "nope")
    with pytest.raises(InvalidNameError):
        select_run(root, "../runs")


@pytest.mark.parametrize("style", ["positional", "env", "alias"])
def test_runs_dir_the_same_way_in_commands_that_name_a_run(tmp_path, runs, style):
    cifar = runs["cifar2"]
    env = {"RUSTORCH_RUNS_DIR": "runs"} if style == "env" else None
    lead = ["runs"] if style == "positional" else []
    alias = {"alias": True}.get(style, False)

    def args(cmd: list[str], *rest: str, option: str = "--runs-dir") -> list[str]:
        return [*cmd, *lead, *rest, *([option, "runs"] if alias else [])]

    show = _invoke(args(["runs", "show"], "cifar", "--json", option="--root"), tmp_path, env)
    assert show.exit_code == 0, show.output
    assert json.loads(show.output)["run"]["run_id"] == cifar
    listed = _invoke(args(["runs", "list"], "--json", option="--root"), tmp_path, env)
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.output)) == 3
    cmp = _invoke(args(["compare"], "cifar", "00", "--json"), tmp_path, env)
    assert cmp.exit_code == 0, cmp.output
    doc = json.loads(cmp.output)
    assert doc["reference"]["run_id"] == cifar
    assert [r["run_id"] for r in doc["runs"]] == [runs["mnist0"]]
    gate = _invoke(args(["gate"], "cifar", "--baseline", "00", "--rule", "loss <= 1000%", "--json"),
                   tmp_path, env)
    assert gate.exit_code == 0, gate.output
    trace = _invoke(args(["trace"], "22", "-o", "t.json", "--json"), tmp_path, env)
    assert trace.exit_code == 0, trace.output
    assert json.loads(trace.output)["title"] == f"run {cifar}"


def test_runs_dir_missing_or_given_twice_is_a_usage_error(tmp_path, runs):
    res = _invoke(["runs", "show", "cifar"], tmp_path)
    assert res.exit_code == 2 and "RUSTORCH_RUNS_DIR" in res.output
    res = _invoke(["runs", "show", "runs", "cifar", "--root", "runs"], tmp_path)
    assert res.exit_code == 2 and "given twice" in res.output
    res = _invoke(["runs", "show", "runs", "mnist"], tmp_path)
    assert res.exit_code == 2 and "give the run id" in res.output


def test_compare_takes_run_folders_without_a_runs_dir(tmp_path, runs):
    res = _invoke(["compare", f"runs/{runs['cifar2']}", f"runs/{runs['mnist0']}", "--json"], tmp_path)
    assert res.exit_code == 0, res.output


def test_release_selects_a_quarantined_run_by_prefix(tmp_path, runs):
    quarantined = tmp_path / "runs" / ".quarantine"
    quarantined.mkdir()
    os.rename(tmp_path / "runs" / runs["cifar2"], quarantined / runs["cifar2"])
    res = _invoke(["release", "runs", "22", "--json"], tmp_path)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / runs["cifar2"]).is_dir()
    res = _invoke(["release", "runs", "zz"], tmp_path)
    assert res.exit_code == 2 and "in quarantine" in res.output


def test_runs_list_is_a_left_aligned_table_with_escaped_names(tmp_path):
    root = tmp_path / "runs"
    with rustorch_tools.start_run(root, name="a", run_id="7-short") as run:
        run.log_metrics({"x": 1.0}, step=0)
    with rustorch_tools.start_run(root, name="b", run_id="123456789-long-id") as run:
        run.log_metrics({"x": 1.0}, step=0)
    doc = json.loads((root / "7-short" / "run.json").read_text())
    doc["name"] = "evil\x1b[31mred"
    atomic.atomic_write_json(root / "7-short" / "run.json", doc)
    res = _invoke(["runs", "list", "runs"], tmp_path)
    lines = res.output.splitlines()
    assert lines[0].startswith("run ")
    body = [ln for ln in lines[2:] if ln.strip()]
    assert body[0].startswith("123456789-long-id ") and body[1].startswith("7-short ")  # left-aligned
    assert "\x1b" not in res.output


def test_watch_prints_text_or_json_lines(tmp_path, runs):
    text = _invoke(["watch", "runs", "--once", "-j", "1"], tmp_path)
    assert text.exit_code == 0, text.output
    assert "runs 3" in text.output and not text.output.lstrip().startswith("{")
    js = _invoke(["watch", "runs", "--once", "-j", "1", "--json"], tmp_path)
    assert json.loads(js.output.splitlines()[0])["summary"]["runs"] == 3


def test_atomic_write_errors_name_the_users_path(tmp_path):
    target = tmp_path / "out.json"
    target.mkdir()  # os.replace of the temp file onto a directory fails
    (target / "x").write_text("keep")
    with pytest.raises(OSError) as info:
        atomic.atomic_write_bytes(target, b"{}")
    assert info.value.filename == str(target)
    assert not [p for p in tmp_path.iterdir() if p.name != "out.json"]  # no temp file left


def test_select_run_by_name_survives_hostile_run_files(tmp_path, runs):
    root = tmp_path / "runs"
    for name in ("deep", "fifo", "huge"):
        (root / name).mkdir()
    (root / "deep" / "run.json").write_text("[" * 100_000)
    os.mkfifo(root / "fifo" / "run.json")
    (root / "huge" / "run.json").write_text('{"name": 1e999999}')
    assert select_run(root, "cifar").name == runs["cifar2"]  # reads every run.json, hangs on none
    res = _invoke(["runs", "list", "runs"], tmp_path)
    assert res.exit_code == 1 and res.output.count("unreadable") == 3, res.output
