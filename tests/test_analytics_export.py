"""`export`: CSV / JSON, long / wide, metric selection, device telemetry, non-finite values."""

import csv
import io
import json
import math

import pytest
from click.testing import CliRunner
from support import analytics_synth as synthetic

from rustorch_tools.cli import cli
from rustorch_tools.store import layout


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.write_run(r, synthetic.run_doc("a", started_at=1000.0),
                        synthetic.training_rows(300, device=True))
    rows = synthetic.training_rows(10)
    rows[3]["loss"] = math.nan
    rows[4]["rank"] = 1
    synthetic.write_run(r, synthetic.run_doc("b", started_at=2000.0), rows)
    return r


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_long_csv_has_every_value(root):
    res = invoke("export", root, "--metrics", "loss,val_acc")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == ["run_id", "step", "time", "rank", "metric", "value"]
    assert len(rows) == (300 + 10) * 2
    b = [r for r in rows if r["run_id"] == "b" and r["metric"] == "loss"]
    assert b[3]["value"] == "nan" and b[4]["rank"] == "1" and b[0]["rank"] == ""
    a0 = next(r for r in rows if r["run_id"] == "a" and r["metric"] == "loss")
    assert float(a0["value"]) == synthetic.training_rows(1)[0]["loss"]  # repr round-trips


def test_wide_json_and_file_output(root, tmp_path):
    out = tmp_path / "x.json"
    res = invoke("export", root, "--format", "json", "--wide", "--metrics", "loss,step_time_ms", "-o", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert len(data) == 310
    assert set(data[0]) == {"run_id", "step", "time", "rank", "loss", "step_time_ms"}
    assert [d["loss"] for d in data if d["run_id"] == "b"][3] == "nan"
    assert "wrote 310 record(s) from 2 run(s)" in res.output


def test_device_telemetry_export(root):
    res = invoke("export", root, "--device", "--wide")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0])[4:] == ["device/memory/max_allocated_bytes",
                                 "device/ops/aten::mm/fallback", "device/ops/aten::mm/native"]
    assert len(rows) == 3 and {r["run_id"] for r in rows} == {"a"}
    assert [r["device/ops/aten::mm/native"] for r in rows] == ["0", "3", "6"]
    same = invoke("export", root, "--metrics", "device/*", "--wide").stdout
    assert same == res.stdout


def test_run_filter_and_errors(root):
    rows = list(csv.DictReader(io.StringIO(invoke("export", root, "--run", "b").stdout)))
    assert {r["run_id"] for r in rows} == {"b"}
    assert invoke("export", root, "--run", "ghost").exit_code == 2
    assert invoke("export", root, "--metrics", "nothing*").exit_code == 2
    assert invoke("export", root / "nope").exit_code == 2
    assert invoke("export", root, "--device", "--metrics", "x").exit_code == 2


def test_empty_json_export_is_valid(tmp_path):
    synthetic.write_run(tmp_path, synthetic.run_doc("empty"), [])
    res = invoke("export", tmp_path, "--format", "json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []


def test_corrupt_lines_skipped_and_broken_runs_warned(root):
    with open(root / "b" / layout.METRICS, "ab") as fh:
        fh.write(b"garbage\n")
    (root / "zz").mkdir()
    (root / "zz" / layout.RUN_JSON).write_bytes(b"\x00\x01")
    res = invoke("export", root, "--metrics", "loss")
    assert res.exit_code == 0
    assert "run zz is unreadable" in res.output
    assert len(list(csv.DictReader(io.StringIO(res.stdout)))) == 310


def test_export_of_runs_logged_with_the_logging_api(tmp_path, monkeypatch):
    """End to end with what Run.log_device_telemetry really writes."""
    import rustorch_tools
    from rustorch_tools import run as run_mod

    monkeypatch.setattr(run_mod, "_op_stats", lambda: {"aten::mm": {"native": 7, "fallback": 1},
                                                       "aten::add.Tensor": {"native": 3, "fallback": 0}})
    with rustorch_tools.start_run(root=tmp_path, name="e2e", config={"lr": 0.1}) as run:
        for i in range(5):
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        run.log_device_telemetry(step=4)
    res = invoke("export", tmp_path, "--device", "--format", "json")
    assert res.exit_code == 0, res.output
    got = {(r["metric"], r["value"]) for r in json.loads(res.stdout)}
    assert {("device/ops/aten::mm/native", 7), ("device/ops/aten::mm/fallback", 1),
            ("device/ops/native_total", 10), ("device/ops/fallback_total", 1)} <= got
    loss = list(csv.DictReader(io.StringIO(invoke("export", tmp_path, "--metrics", "loss").stdout)))
    assert [float(r["value"]) for r in loss] == [1.0 / (i + 1) for i in range(5)]
