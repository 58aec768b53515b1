"""`graph`: parent links with config deltas, same-config groups, descendants, cycles."""

import json

import pytest
from click.testing import CliRunner
from support import analytics_synth as synthetic

from rustorch_tools.analytics.lineage import descendants, find_cycles
from rustorch_tools.analytics.summary import summarize_run
from rustorch_tools.cli import cli
from rustorch_tools.store import runs


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    r.mkdir()
    synthetic.lineage_runs(r, steps=10)
    return r


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_graph_json_edges_with_config_delta(root):
    res = invoke("graph", root, "--format", "json")
    assert res.exit_code == 0, res.output
    g = json.loads(res.stdout)
    assert {n["id"] for n in g["nodes"]} == {"base", "fork", "resume", "finetune", "rerun", "failed"}
    parent = {(e["from"], e["to"]): e for e in g["edges"] if e["kind"] == "parent"}
    assert set(parent) == {("base", "fork"), ("fork", "resume"), ("base", "finetune")}
    assert parent[("base", "fork")]["relation"] == "fork"
    assert parent[("base", "fork")]["config_delta"] == [
        {"key": "config.lr", "change": "changed", "a": 0.1, "b": 0.05}]
    assert parent[("fork", "resume")]["config_delta"] == []
    assert parent[("base", "finetune")]["config_delta"][0]["key"] == "config.model.head"
    same = [(e["from"], e["to"]) for e in g["edges"] if e["kind"] == "same_config"]
    assert ("base", "rerun") in same and ("fork", "resume") in same
    assert sorted(map(sorted, (grp["runs"] for grp in g["config_groups"]))) == [
        ["base", "rerun"], ["fork", "resume"]]
    assert g["missing_parents"] == [] and g["cycles"] == []


def test_graph_dot_is_well_formed(root):
    res = invoke("graph", root)
    assert res.exit_code == 0
    dot = res.stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"base" -> "fork" [label="fork\\nconfig.lr=0.05"];' in dot
    assert "style=dashed" in dot
    assert "style=dashed" not in invoke("graph", root, "--no-config-edges").stdout
    assert dot.count("{") == dot.count("}")


def test_descendants(root):
    res = invoke("graph", root, "--format", "json", "--descendants", "base")
    doc = json.loads(res.stdout)
    assert doc["root"] == "base"
    got = [(d["run_id"], d["parent"], d["depth"], d["relation"]) for d in doc["descendants"]]
    assert got == [("fork", "base", 1, "fork"), ("finetune", "base", 1, "finetune"),
                   ("resume", "fork", 2, "resume")]
    assert json.loads(invoke("graph", root, "--format", "json", "--descendants", "resume"
                             ).stdout)["descendants"] == []
    dot = invoke("graph", root, "--descendants", "fork").stdout
    assert '"fork" -> "resume"' in dot and '"base"' not in dot and "penwidth=3" in dot
    assert invoke("graph", root, "--descendants", "ghost").exit_code == 2


def test_missing_parent_and_cycles_do_not_hang(root):
    runs.update_run(root / "base", lambda d: d.update(parent={"run_id": "resume", "relation": "fork",
                                                             "checkpoint": None}))
    runs.update_run(root / "rerun", lambda d: d.update(parent={"run_id": "gone", "relation": "resume",
                                                              "checkpoint": None}))
    g = json.loads(invoke("graph", root, "--format", "json").stdout)
    assert g["missing_parents"] == [{"run": "rerun", "parent": "gone"}]
    assert [sorted(c) for c in g["cycles"]] == [["base", "fork", "resume"]]
    summaries = [summarize_run(root / n) for n in ("base", "fork", "resume")]
    assert len(find_cycles(summaries)) == 1
    got = {d["run_id"] for d in descendants(summaries, "base")}
    assert got == {"fork", "resume"}  # the cycle back to base is not followed


def test_hostile_names_are_escaped_in_dot(tmp_path):
    doc = synthetic.run_doc("r1", name='evil"} digraph x {\\')
    synthetic.write_run(tmp_path, doc, [])
    dot = invoke("graph", tmp_path).stdout
    assert 'evil\\"} digraph x {\\\\' in dot
    assert dot.count("digraph") == 2 and dot.rstrip().endswith("}")


def test_lineage_and_compare_of_runs_logged_with_the_api(tmp_path):
    """End to end: runs created by rustorch_tools.start_run, parent links included."""
    import rustorch_tools

    def train(name, config, **kw):
        with rustorch_tools.start_run(root=tmp_path, name=name, config=config, seed=1, **kw) as run:
            for i in range(20):
                run.log_metrics({"loss": config["lr"] / (i + 1), "val_acc": 0.5 + i / 100}, step=i)
        return run.run_id

    base = train("base", {"lr": 0.1, "opt": {"name": "sgd"}})
    child = train("ft", {"lr": 0.01, "opt": {"name": "sgd"}}, parent=base, relation="finetune")
    g = json.loads(invoke("graph", tmp_path, "--format", "json").stdout)
    edge = next(e for e in g["edges"] if e["kind"] == "parent")
    assert (edge["from"], edge["to"], edge["relation"]) == (base, child, "finetune")
    assert edge["config_delta"] == [{"key": "config.lr", "change": "changed", "a": 0.1, "b": 0.01}]
    res = invoke("compare", base, child, "--runs-dir", tmp_path, "--json")
    loss = {m["metric"]: m for m in json.loads(res.stdout)["comparisons"][0]["metrics"]}["loss"]
    assert loss["final"]["rel"] == pytest.approx(-0.9)
    assert loss["at_steps"]["common_steps"] == 20
