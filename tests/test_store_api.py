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


def _lines_without_time(run_dir: Path) -> list[dict]:
    from rustorch_tools.store import jsonl

    return [{k: v for k, v in jsonl.decode_line(line).items() if k != "time"}
            for line in (run_dir / "metrics.jsonl").read_bytes().splitlines()]


def test_log_columns_writes_what_log_metrics_writes(tmp_path):
    """The bulk encoder gives the rows (keys, order, value types, CRC) and the summary of one
    log_metrics call per row; non-finite or non-numeric columns fall back row by row."""
    with rustorch_tools.start_run(tmp_path, name="a", run_id="a", rank=2) as a:
        for i in range(4):
            a.log_metrics({"loss": 1.0 / (i + 1), "epoch": i, "ok": i % 2 == 0, "big": 1e300}, step=3 + i)
    with rustorch_tools.start_run(tmp_path, name="b", run_id="b", rank=2) as b:
        assert b.log_columns({"loss": [1.0 / (i + 1) for i in range(4)], "epoch": np.arange(4),
                              "ok": np.array([True, False, True, False]), "big": [1e300] * 4},
                             start_step=3) == 4
    assert _lines_without_time(a.dir) == _lines_without_time(b.dir)
    assert a.read()["summary"]["metrics"] == b.read()["summary"]["metrics"]
    with rustorch_tools.start_run(tmp_path, name="c") as c:
        c.log_columns({"x": np.array([1.0, 2.0])}, steps=[0, 5])
        with pytest.warns(rustorch_tools.NonFiniteMetricWarning):
            c.log_columns({"x": [np.inf, 1.0]})
        with pytest.raises(ValueError, match="must not decrease"):
            c.log_columns({"x": [1.0, 2.0]}, steps=[9, 8])
        with pytest.raises(ValueError, match="differ in length"):
            c.log_columns({"x": [1.0], "y": [1.0, 2.0]})
        with pytest.raises(rustorch_tools.InvalidNameError):
            c.log_columns({"step": [1]})
    rows = _lines_without_time(c.dir)
    assert [r["step"] for r in rows] == [0, 5, 6, 7]
    assert rows[2] == {"step": 6, "x": "inf", "_nonfinite": ["x"]}
    from rustorch_tools.governance.validate import validate_runs

    assert validate_runs(tmp_path).summary()["errors"] == 0


def test_log_batch_of_uniform_rows_takes_the_bulk_path(tmp_path, monkeypatch):
    from rustorch_tools.run import Run

    calls = []
    monkeypatch.setattr(Run, "log_metrics", lambda self, *a, **k: calls.append(a))
    with rustorch_tools.start_run(tmp_path, name="r") as run:
        assert run.log_batch({"loss": float(i), "n": i} for i in range(1000)) == 1000
    assert not calls
    assert [r["step"] for r in RunStore(tmp_path).run(run.run_id).iter_metrics()] == list(range(1000))


def test_no_module_outside_store_opens_run_files_or_builds_run_paths():
    """The store boundary: only rustorch_tools/store/ touches RUNS_DIR's layout."""
    offenders = []
    layout_paths = {"RUN_JSON", "METRICS", "EVENTS", "MANIFEST", "CHECKPOINTS", "ARTIFACTS",
                    "LATEST", "QUARANTINE_DIR", "AUDIT_DIR", "INDEX_DIR", "PIPELINES_DIR", "LOCK"}
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


def test_no_module_outside_store_rolls_its_own_atomic_write():
    """Temp file + rename and hard-link publishing are store/atomic.py's and store/pipelines.py's:
    a second copy elsewhere drifts (link checks, modes, error names). Checked in the packages
    that write pipeline state, traces, training runs, bundles, validation caches and the
    analytics index."""
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if not rel.startswith(("pipeline/", "tracing/", "train/", "repro/", "governance/",
                               "analytics/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id in ("os", "tempfile") and \
                    node.func.attr in ("replace", "rename", "link", "mkstemp"):
                offenders.append(f"{rel}:{node.lineno} {node.func.value.id}.{node.func.attr}")
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
