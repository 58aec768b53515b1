"""Races and damage: concurrent commands on a cold index, writers during reads, and
randomly corrupted run folders (a finding or a warning, never a traceback)."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import analytics_synth as synthetic

from rustorch_tools.cli import cli
from rustorch_tools.store import layout

REPO = Path(__file__).resolve().parents[1]


def _cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "rustorch_tools", *map(str, args)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=300)
    for i in range(10):
        synthetic.write_run(r, synthetic.run_doc(f"sweep-{i:02d}", config={"lr": 0.01 * (i + 1)},
                                                 started_at=1_764_400_000.0 + 60 * i),
                            synthetic.training_rows(300, final_acc=0.9 + i / 200))
    return r


def test_two_compares_and_two_reports_at_once_on_a_cold_index(root, tmp_path):
    procs = [subprocess.Popen(_cmd("compare", "--baseline", "base", root, "--json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
             for _ in range(2)]
    procs += [subprocess.Popen(_cmd("report", root, "-o", tmp_path / f"r{i}.html"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
              for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
        assert b"Traceback" not in err
    a, b = (json.loads(outs[i][0]) for i in range(2))
    assert a == b and len(a["comparisons"]) == 15
    for i in range(2):
        assert (tmp_path / f"r{i}.html").read_text().rstrip().endswith("</html>")
    # Both reports to the same file at once: one complete file, no temp left behind.
    same = [subprocess.Popen(_cmd("report", root, "-o", tmp_path / "same.html"),
                             stderr=subprocess.PIPE, env=_env()) for _ in range(2)]
    for p in same:
        assert p.wait(timeout=300) == 0
    assert (tmp_path / "same.html").read_text().rstrip().endswith("</html>")
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


WRITER = """
import sys, time
from pathlib import Path
from rustorch_tools.store import layout, runs
d = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    runs.append_rows(d / layout.METRICS, [{"step": 1000 + i, "time": time.time(), "loss": 0.5, "val_acc": 0.9}])
"""


def test_commands_while_a_run_is_being_written(root, tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root / "sweep-03"), "3000"],
                              env=_env())
    try:
        rounds = 0
        while writer.poll() is None or rounds == 0:
            for args in (("compare", "--baseline", "base", root, "--json"),
                         ("report", root, "-o", tmp_path / "live.html"),
                         ("export", root, "--run", "sweep-03", "--metrics", "loss")):
                res = subprocess.run(_cmd(*args), capture_output=True, env=_env(), timeout=300)
                assert res.returncode == 0, res.stderr.decode()
                assert b"corrupt" not in res.stdout + res.stderr
            rounds += 1
    finally:
        assert writer.wait(timeout=300) == 0
    res = CliRunner().invoke(cli, ["compare", "base", "sweep-03", "--runs-dir", str(root), "--json"])
    loss = {m["metric"]: m for m in json.loads(res.stdout)["comparisons"][0]["metrics"]}["loss"]
    assert loss["final"]["run"] == 0.5 and loss["final_step"]["run"] == 3999


def _corrupt(run_dir: Path, rng: random.Random, kind: str, outside: Path) -> None:
    rj, mj = run_dir / layout.RUN_JSON, run_dir / layout.METRICS
    if kind == "truncate_run_json":
        data = rj.read_bytes()
        rj.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "garbage_run_json":
        rj.write_bytes(bytes(rng.randrange(256) for _ in range(200)))
    elif kind == "wrong_types":
        doc = json.loads(rj.read_text())
        doc.update(config=[1, 2], params="x", status=3, started_at="yesterday", tags=[],
                   parent={"run_id": 7}, environment=None, name={"a": 1})
        rj.write_text(json.dumps(doc))
    elif kind == "garbage_metrics":
        with open(mj, "r+b") as fh:
            size = fh.seek(0, 2)
            for _ in range(20):
                fh.seek(rng.randrange(size))
                fh.write(bytes([rng.randrange(256)]))
    elif kind == "huge_line":
        with open(mj, "ab") as fh:
            fh.write(b'{"step":1,"loss":' + b"9" * 2_000_000 + b"}\n")
    elif kind == "truncate_metrics":
        data = mj.read_bytes()
        mj.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "metrics_is_dir":
        mj.unlink()
        mj.mkdir()
    elif kind == "symlink_outside":
        (outside / "secret.json").write_text(rj.read_text())
        rj.unlink()
        rj.symlink_to(outside / "secret.json")
    elif kind == "run_json_missing":
        rj.unlink()
    elif kind == "bad_rows":
        with open(mj, "ab") as fh:
            from rustorch_tools.store import jsonl

            for row in ({"step": -1, "loss": 1}, {"step": "x", "loss": 1}, {"step": 2, "loss": True},
                        {"step": 3, "loss": "nan"}, {"step": 4, "loss": [1]}, {"time": 1},
                        {"step": 5, "loss": 10**400, "val_acc": -(10**400)}, {"step": 2**70, "loss": 1}):
                fh.write(jsonl.encode_row(row))
    elif kind == "newer_schema":
        doc = json.loads(rj.read_text())
        doc["schema_version"] = 99
        rj.write_text(json.dumps(doc))


KINDS = ["truncate_run_json", "garbage_run_json", "wrong_types", "garbage_metrics", "huge_line",
         "truncate_metrics", "metrics_is_dir", "symlink_outside", "run_json_missing", "bad_rows",
         "newer_schema"]


@pytest.mark.parametrize("seed", range(3))
def test_randomly_corrupted_runs_never_crash_a_command(root, tmp_path, seed):
    rng = random.Random(seed)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [f"sweep-{i:02d}" for i in range(10)] + ["rerun"]
    kinds = KINDS[:]
    rng.shuffle(kinds)
    for run_id, kind in zip(victims, kinds, strict=False):
        _corrupt(root / run_id, rng, kind, outside)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".index" not in p.parts}
    runner = CliRunner()
    commands = [
        ["compare", "--baseline", "base", str(root), "--json"],
        ["compare", "base", "fork", "--runs-dir", str(root)],
        ["graph", str(root), "--format", "json"], ["graph", str(root)],
        ["graph", str(root), "--descendants", "base"],
        ["export", str(root), "--format", "json", "--wide"], ["export", str(root)],
        ["report", str(root), "-o", str(tmp_path / "r.html"), "--baseline", "base",
         "--rule", "val_acc >= -50%", "--drift-threshold", "0.5"],
        ["index", str(root), "--json"],
        ["gate", "fork", "--baseline", "base", "--runs-dir", str(root), "--rule", "loss <= +1000%"],
    ]
    for args in commands:
        res = runner.invoke(cli, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (
            args, "".join(__import__("traceback").format_exception(res.exception)))
        assert res.exit_code in (0, 1), (args, res.output[-2000:])
    index_doc = json.loads(runner.invoke(cli, ["index", str(root), "--json"]).stdout)
    unreadable = {b["run_id"] for b in index_doc["broken"]}
    expected = {v for v, k in zip(victims, kinds, strict=False)
                if k in ("truncate_run_json", "garbage_run_json", "run_json_missing", "newer_schema")}
    assert expected <= unreadable
    # Nothing under RUNS_DIR was modified (the index lives in .index/ only).
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".index" not in p.parts}
    assert after == before


_values = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(), st.booleans(),
                    st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
_rows = st.lists(st.dictionaries(
    st.one_of(st.sampled_from(["step", "time", "rank", "loss", "acc", "_x"]), st.text(min_size=1, max_size=6)),
    _values, min_size=1, max_size=5), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows)
def test_any_logged_rows_summarize_without_error(tmp_path_factory, rows):
    from rustorch_tools.analytics.compare import compare
    from rustorch_tools.analytics.summary import RunSummary, summarize_run
    from rustorch_tools.store import jsonl

    root = tmp_path_factory.mktemp("fuzz")
    d = synthetic.write_run(root, synthetic.run_doc("r"), [])
    with open(d / layout.METRICS, "ab") as fh:
        for row in rows:
            if "_crc" not in row:
                fh.write(jsonl.encode_row(row))
    s = summarize_run(d)
    assert isinstance(s, RunSummary)
    assert s.rows + s.corrupt_lines == len([r for r in rows if "_crc" not in r])
    for m in s.metrics.values():
        assert m.count >= 1 and m.steps.size == m.values.size
    json.dumps(compare(s, [s])["comparisons"][0]["metrics"], default=str)
