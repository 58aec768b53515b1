"""`rustorch-tools runs list|show`."""

import json

from click.testing import CliRunner

import rustorch_tools
from rustorch_tools.cli import cli
from rustorch_tools.store import layout


def test_list_and_show(tmp_path):
    with rustorch_tools.start_run(root=tmp_path, name="a") as run:
        run.log_metrics({"loss": 1.0}, step=3)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / layout.RUN_JSON).write_text("{nope")
    runner = CliRunner()
    out = runner.invoke(cli, ["runs", "list", "--root", str(tmp_path), "--json"])
    assert out.exit_code == 1  # the unreadable run is a finding, and it is listed
    rows = {r["run_id"]: r for r in json.loads(out.output)}
    assert rows[run.run_id]["status"] == "finished" and rows[run.run_id]["last_step"] == 3
    assert rows["broken"]["status"] == "unreadable" and "not valid JSON" in rows["broken"]["error"]
    out = runner.invoke(cli, ["runs", "show", run.run_id, "--root", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["metrics"] == {"rows": 1, "corrupt_lines": 0, "incomplete_tail": False, "names": ["loss"]}
    assert [e["event"] for e in report["events"]] == ["created", "finished"]
    with open(run.dir / layout.METRICS, "ab") as fh:
        fh.write(b"garbage\n")
    out = runner.invoke(cli, ["runs", "show", run.run_id, "--root", str(tmp_path)])
    assert out.exit_code == 1 and "1 corrupt lines" in out.output
    assert runner.invoke(cli, ["runs", "show", "missing", "--root", str(tmp_path)]).exit_code == 2
    assert runner.invoke(cli, ["runs", "show", "../x", "--root", str(tmp_path)]).exit_code == 2
    assert runner.invoke(cli, ["runs", "list", "--root", str(tmp_path / "nope")]).exit_code == 2
