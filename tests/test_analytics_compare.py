"""`compare`: config diff, metric deltas (final, best, matching steps), environment diff."""

import json

import pytest
from click.testing import CliRunner
from support import analytics_synth as synthetic

from rustorch_tools.cli import cli
from rustorch_tools.store import layout


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=120)
    return r


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_compare_two_runs_json(root):
    res = invoke("compare", "base", "fork", "--runs-dir", root, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["reference"]["run_id"] == "base" and [r["run_id"] for r in doc["runs"]] == ["fork"]
    comp = doc["comparisons"][0]
    assert comp["config_diff"] == [{"key": "config.lr", "change": "changed", "a": 0.1, "b": 0.05}]
    assert comp["environment_diff"] == []
    m = {x["metric"]: x for x in comp["metrics"]}
    assert set(m) == {"loss", "val_acc", "step_time_ms"}
    f = m["val_acc"]["final"]
    assert f["delta"] == pytest.approx(f["run"] - f["reference"])
    assert f["rel"] == pytest.approx((f["run"] - f["reference"]) / abs(f["reference"]))
    assert m["loss"]["higher_is_better"] is False and m["val_acc"]["higher_is_better"] is True
    assert m["loss"]["best"]["run"] == pytest.approx(min_loss(root / "fork"))
    steps = m["loss"]["at_steps"]
    assert steps["common_steps"] == 120
    assert steps["points"][0]["step"] == 0 and steps["points"][-1]["step"] == 119
    for p in steps["points"]:
        assert p["delta"] == pytest.approx(p["run"] - p["reference"])


def min_loss(run_dir):
    from rustorch_tools.store import runs

    return min(r["loss"] for r in runs.iter_metrics(run_dir))


def test_compare_by_paths_and_environment_diff(root):
    from rustorch_tools.store import runs

    runs.update_run(root / "rerun", lambda d: d["environment"].update(torch="2.15.0", pid=99))
    res = invoke("compare", root / "base", root / "rerun", "--json")
    assert res.exit_code == 0, res.output
    comp = json.loads(res.stdout)["comparisons"][0]
    assert comp["config_diff"] == []
    assert comp["environment_diff"] == [{"key": "torch", "change": "changed", "a": "2.14.1",
                                         "b": "2.15.0"}]  # pid ignored


def test_compare_three_runs_table_and_markdown(root):
    res = invoke("compare", "base", "fork", "finetune", "--runs-dir", root)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "Compared against base" in out and "Config diff" in out
    assert "config.model.head" in out and "config.lr" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(("fork ", "finetune "))]
    assert len([ln for ln in lines if " val_acc " in ln]) == 2
    md = invoke("compare", "base", "fork", "--runs-dir", root, "--markdown").stdout
    assert "| run | metric |" in md and "|---|" in md


def test_compare_metric_filter(root):
    doc = json.loads(invoke("compare", "base", "fork", "--runs-dir", root, "--json",
                            "--metrics", "val_*").stdout)
    assert [m["metric"] for m in doc["comparisons"][0]["metrics"]] == ["val_acc"]


def test_compare_baseline_against_runs_dir(root):
    res = invoke("compare", "--baseline", "base", root, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [c["run"] for c in doc["comparisons"]] == ["fork", "resume", "finetune", "rerun", "failed"]
    failed = next(c for c in doc["comparisons"] if c["run"] == "failed")
    m = {x["metric"]: x for x in failed["metrics"]}
    # The failed run logged 30 of 120 steps: matching steps are the first 30.
    assert m["loss"]["at_steps"]["common_steps"] == 30


def test_compare_reports_broken_runs_without_failing(root):
    (root / "rerun" / layout.RUN_JSON).write_text("[]")
    res = invoke("compare", "--baseline", "base", root, "--json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [b["run_id"] for b in doc["broken"]] == ["rerun"]
    assert "unreadable" in res.output  # warning on stderr
    res = invoke("compare", "base", "rerun", "--runs-dir", root)
    assert res.exit_code == 2 and "unreadable" in res.output


@pytest.mark.parametrize("args", [
    ["compare", "base"], ["compare", "base", "ghost", "--runs-dir", "{root}"],
    ["compare", "--baseline", "base", "{root}", "fork"], ["compare", "base", "fork"],
    ["compare", "../x", "fork", "--runs-dir", "{root}"],
    ["compare", "base", "fork", "--runs-dir", "{root}", "--json", "--markdown"],
    ["compare", "--baseline", "ghost", "{root}"], ["compare", "--baseline", "base", "{root}/nope"],
    ["compare", "base", "fork", "--runs-dir", "{root}", "--metrics", "nothing*"],
])
def test_compare_usage_errors_exit_2(root, args):
    res = invoke(*[a.format(root=root) for a in args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output


def test_nonfinite_values_stay_valid_json(tmp_path):
    import math

    rows = synthetic.training_rows(20)
    rows[-1]["loss"] = math.inf
    synthetic.write_run(tmp_path, synthetic.run_doc("a"), synthetic.training_rows(20))
    synthetic.write_run(tmp_path, synthetic.run_doc("b"), rows)
    res = invoke("compare", "a", "b", "--runs-dir", tmp_path, "--json")
    loss = {m["metric"]: m for m in json.loads(res.stdout)["comparisons"][0]["metrics"]}["loss"]
    assert loss["final"]["run"] == "inf" and loss["final"]["delta"] is None


def test_output_file(root, tmp_path):
    out = tmp_path / "cmp.md"
    res = invoke("compare", "base", "fork", "--runs-dir", root, "--markdown", "-o", out)
    assert res.exit_code == 0 and res.stdout == ""
    assert "| fork | val_acc |" in out.read_text()


def test_runs_inside_a_reserved_folder_leave_no_index_there(root):
    import shutil

    q = root / ".quarantine"
    q.mkdir()
    shutil.copytree(root / "fork", q / "fork")
    res = invoke("compare", root / "base", q / "fork", "--json")
    assert res.exit_code == 0, res.output
    assert not (q / ".index").exists() and (root / ".index").exists()


def test_curve_sampling_keeps_matching_steps():
    import numpy as np

    from rustorch_tools.analytics.summary import SERIES_POINTS, _grid_sample

    def sample(steps):
        s = np.asarray(steps, dtype=np.int64)
        return _grid_sample(s, s.astype(float), SERIES_POINTS)[0]

    a, b = sample(range(1000)), sample(range(600))
    assert len(a) <= SERIES_POINTS + 1 and a[0] == 0 and a[-1] == 999
    assert len(np.intersect1d(a, b)) >= len(b) - 1  # b's grid (minus its last step) is in a's
    sparse = sample(range(0, 1_000_000_000, 1_000_000))
    assert SERIES_POINTS // 4 <= len(sparse) <= SERIES_POINTS and sparse[-1] == 999_000_000
    assert list(sample([0, 5, 9])) == [0, 5, 9]
