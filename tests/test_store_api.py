"""The read API (`read_metrics`), the batch logging call and the RunStore boundary."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import rustorch_tools
from rustorch_tools.store.runstore import RunStore

PKG = Path(rustorch_tools.__file__).resolve().parent


def test_read_metrics_returns_columns(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="r") as run:
        run.log_batch([{"loss": 1.0, "acc": 0.1}, {"loss": 0.5}, {"loss": math.nan, "acc": 0.3}])
        run.log_metrics({"acc": 0.4}, step=10)
    cols = rustorch_tools.read_metrics(run.dir, as_pandas=False)
    assert list(cols["step"]) == [0, 1, 2, 10]
    np.testing.assert_array_equal(cols["loss"], [1.0, 0.5, np.nan, np.nan])
    np.testing.assert_array_equal(cols["acc"], [0.1, np.nan, 0.3, 0.4])
    assert cols["step"].dtype == np.int64 and "rank" not in cols
    assert set(rustorch_tools.read_metrics(run, metrics=["acc"], as_pandas=False)) == {"step", "time", "acc"}


def test_log_batch_checks_every_row(tmp_path):
    with rustorch_tools.start_run(tmp_path, name="r") as run:
        assert run.log_batch([{"step": 5, "a": 1}, {"a": 2}], start_step=0) == 2
        with pytest.raises(ValueError, match="must not decrease"):
            run.log_batch([{"step": 1, "a": 1}])
        with pytest.raises(rustorch_tools.InvalidNameError):
            run.log_batch([{"_x": 1}])
    assert [r["step"] for r in RunStore(tmp_path).run(run.run_id).iter_metrics()] == [5, 6]


def test_no_module_outside_store_opens_run_files_or_builds_run_paths():
    """The store boundary: only rustorch_tools/store/ touches RUNS_DIR's layout."""
    offenders = []
    layout_paths = {"RUN_JSON", "METRICS", "EVENTS", "MANIFEST", "CHECKPOINTS", "ARTIFACTS",
                    "LATEST", "QUARANTINE_DIR", "AUDIT_DIR", "INDEX_DIR", "LOCK"}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("store/"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # `<something> / layout.X`: a path built from a layout constant
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                for side in (node.left, node.right):
                    if isinstance(side, ast.Attribute) and side.attr in layout_paths:
                        offenders.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("run_lock", "append_line", "atomic_write_json",
                                       "atomic_write_bytes", "write_run", "update_run"):
                offenders.append(f"{rel}:{node.lineno} {node.func.attr}")
    assert offenders == []


def _leaves(command, path=()):
    import click

    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


def test_every_command_documents_exit_codes_and_speaks_json():
    from click.testing import CliRunner

    from rustorch_tools.cli import cli

    for path, _command in _leaves(cli):
        text = CliRunner().invoke(cli, [*path, "--help"]).output
        assert "usage or i/o error" in " ".join(text.lower().split()), path
        assert "--json" in text, path


def test_runs_dir_comes_from_the_environment(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rustorch_tools.cli import cli

    with rustorch_tools.start_run(tmp_path, name="r"):
        pass
    monkeypatch.setenv("RUSTORCH_RUNS_DIR", str(tmp_path))
    for args in (["validate", "--json"], ["runs", "list", "--json"], ["export", "--json"],
                 ["graph", "--json"], ["index", "--json"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, (args, res.output)
