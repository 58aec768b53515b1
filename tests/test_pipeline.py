"""`rustorch-tools pipeline`: checked TOML (exit 2 before anything runs), stage runs with lineage,
content-addressed caching, --force, retries and failure policy, resume after `kill -9` of the
driver, and the example pipeline (small)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rustorch_tools.cli import cli
from rustorch_tools.store import runs as store_runs
from rustorch_tools.store.layout import iter_run_dirs

REPO = Path(__file__).resolve().parent.parent

STAGES = '''
import json, os, time
from pathlib import Path

def make(n: int, ctx=None) -> dict:
    ctx.run.log_metrics({"made": n}, step=0)
    (ctx.outputs_dir / "numbers.txt").write_text(" ".join(map(str, range(n))))
    print("made", n)
    return {"count": n}

def add(values: list, offset: int = 0) -> dict:
    return {"total": sum(values) + offset}

def flaky(marker: str) -> dict:
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first attempt fails")
    return {"ok": True}

def boom() -> dict:
    raise ValueError("always fails")

def slow(seconds: float, marker: str) -> dict:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": seconds}
'''


@pytest.fixture
def stages_module(tmp_path, monkeypatch):
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    name = f"pl_stages_{os.getpid()}_{time.time_ns()}"
    (mod_dir / f"{name}.py").write_text(STAGES)
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(mod_dir), str(REPO), os.environ.get("PYTHONPATH", "")]))
    return name


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _cli(*args: str):
    return CliRunner().invoke(cli, ["pipeline", *args], catch_exceptions=False)


def _stage_runs(runs: Path, stage: str | None = None) -> list[dict]:
    docs = [store_runs.read_run(d) for d in iter_run_dirs(runs)]
    return [d for d in docs if stage is None or d["tags"].get("stage") == stage]


@pytest.mark.parametrize("body, message", [
    ('[stages.a]\npython = "m:f"\ndeps = ["b"]\n[stages.b]\ncommand = ["true"]\ndeps = ["a"]\n', "cycle: "),
    ('[stages.a]\ncommand = ["echo", "${nothere.run_id}"]\n', "unknown stage 'nothere'"),
    ('[stages.a]\ncommand = ["true"]\ndeps = ["ghost"]\n', "depends on unknown stage 'ghost'"),
    ('[stages.a]\npython = "rustorch_tools.pipeline.builtins:check_mnist"\nparams = { min_train = "many" }\n',
     "'min_train' must be int"),
    ('[stages.a]\npython = "rustorch_tools.pipeline.builtins:evaluate_runs"\nparams = { runs = [] }\n',
     "missing required parameter 'configs'"),
    ('[stages.a]\ntrain = { model = { name = "mlp" } }\n', "[optimizer] table missing"),
    ('[stages.a]\ncommand = ["echo", "${matrix.lr}"]\n', "no matrix key 'lr'"),
    ('[pipeline]\nconcurrency = "two"\n[stages.a]\ncommand = ["true"]\n', "concurrency must be an int"),
    ('[stages.a\ncommand = 1', "TOML syntax"),
])
def test_bad_pipelines_exit_2_before_running(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    result = _cli("run", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_fifo_or_missing_pipeline_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path / "absent.toml"):
        result = _cli("plan", str(path))
        assert result.exit_code == 2 and "error:" in result.output, result.output


def test_run_cache_force_and_lineage(tmp_path, stages_module):
    runs = tmp_path / "runs"
    path = _write(tmp_path, f'''
        [pipeline]
        name = "demo"
        concurrency = 2
        [stages.make]
        python = "{stages_module}:make"
        matrix = {{ n = [2, 3] }}
        params = {{ n = "${{matrix.n}}" }}
        outputs = ["count"]
        [stages.sum]
        python = "{stages_module}:add"
        params = {{ values = "${{make.outputs.count}}", offset = 10 }}
        outputs = ["total"]
        [stages.echo]
        command = ["{sys.executable}", "-c", "import sys; print('total', sys.argv[1])", "${{sum.outputs.total}}"]
    ''')
    first = _cli("run", str(path), "--runs-dir", str(runs), "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)
    assert {i["status"] for i in doc["instances"]} == {"done"}
    assert len(_stage_runs(runs)) == 4
    (sum_run,) = _stage_runs(runs, "sum")
    make_ids = {d["run_id"] for d in _stage_runs(runs, "make")}
    assert set(sum_run["params"]["pipeline/upstream"]) == make_ids  # lineage edges
    sum_dir = runs / sum_run["run_id"]
    assert json.loads((sum_dir / "artifacts" / "outputs.json").read_text()) == {"total": 15}
    (echo_run,) = _stage_runs(runs, "echo")
    assert "total 15" in (runs / echo_run["run_id"] / "artifacts" / "stage.log").read_text()
    (make2,) = [d for d in _stage_runs(runs, "make") if d["params"]["pipeline/matrix"] == {"n": 2}]
    assert "made 2" in (runs / make2["run_id"] / "artifacts" / "stage.log").read_text()
    assert (runs / make2["run_id"] / "artifacts" / "outputs" / "numbers.txt").read_text() == "0 1"

    graph = CliRunner().invoke(cli, ["graph", str(runs), "--format", "json"])
    edges = [e for e in json.loads(graph.output)["edges"] if e["kind"] == "pipeline"]
    assert {(e["from"], e["to"]) for e in edges} >= {(m, sum_run["run_id"]) for m in make_ids}

    plan = _cli("plan", str(path), "--runs-dir", str(runs), "--json")
    assert {i["status"] for i in json.loads(plan.output)["instances"]} == {"cached"}
    again = _cli("run", str(path), "--runs-dir", str(runs), "--json")
    assert {i["status"] for i in json.loads(again.output)["instances"]} == {"cached"}
    assert len(_stage_runs(runs)) == 4  # nothing ran twice

    forced = json.loads(_cli("run", str(path), "--runs-dir", str(runs), "--force", "sum", "--json").output)
    status = {i["id"]: i["status"] for i in forced["instances"]}
    # sum re-ran and produced the same outputs, so echo's inputs did not change: still cached
    assert status == {"make[n=2]": "cached", "make[n=3]": "cached", "sum": "done", "echo": "cached"}
    assert len(_stage_runs(runs, "sum")) == 2 and len(_stage_runs(runs, "echo")) == 1
    forced = json.loads(_cli("run", str(path), "--runs-dir", str(runs), "--force", "make[n=2]",
                             "--json").output)
    status = {i["id"]: i["status"] for i in forced["instances"]}  # same outputs again
    assert status == {"make[n=2]": "done", "make[n=3]": "cached", "sum": "cached", "echo": "cached"}
    path.write_text(path.read_text().replace("offset = 10", "offset = 11"))  # a changed param
    changed = json.loads(_cli("run", str(path), "--runs-dir", str(runs), "--json").output)
    status = {i["id"]: i["status"] for i in changed["instances"]}
    assert status == {"make[n=2]": "cached", "make[n=3]": "cached", "sum": "done", "echo": "done"}
    st = _cli("status", str(path), "--runs-dir", str(runs))
    assert st.exit_code == 0 and "succeeded" in st.output
    (runs / ".pipelines" / "demo" / "state.json").write_text('{"instances": [1, 2]}')
    st = _cli("status", str(path), "--runs-dir", str(runs))
    assert st.exit_code == 2 and "damaged" in st.output


def test_retries_and_failure_policies(tmp_path, stages_module):
    runs = tmp_path / "runs"
    marker = tmp_path / "marker"
    path = _write(tmp_path, f'''
        [pipeline]
        on_failure = "continue"
        [stages.flaky]
        python = "{stages_module}:flaky"
        params = {{ marker = "{marker}" }}
        retries = 1
        [stages.bad]
        python = "{stages_module}:boom"
        [stages.after_bad]
        command = ["true"]
        deps = ["bad"]
    ''')
    result = _cli("run", str(path), "--runs-dir", str(runs), "--json")
    assert result.exit_code == 1
    status = {i["id"]: i for i in json.loads(result.output)["instances"]}
    assert status["flaky"]["status"] == "done" and status["flaky"]["attempts"] == 2
    assert status["bad"]["status"] == "failed" and "always fails" in status["bad"]["error"]
    assert status["after_bad"]["status"] == "skipped"
    flaky_runs = sorted(d["status"] for d in _stage_runs(runs, "flaky"))
    assert flaky_runs == ["failed", "finished"]  # one successful run; the failed attempt kept
    (bad,) = _stage_runs(runs, "bad")
    assert "ValueError: always fails" in (runs / bad["run_id"] / "artifacts" / "stage.log").read_text()

    stop = path.read_text().replace('on_failure = "continue"', 'on_failure = "stop"\nconcurrency = 1')
    path.write_text(stop.replace("[stages.flaky]", "[stages.zflaky]"))
    marker.unlink()
    result = json.loads(_cli("run", str(path), "--runs-dir", str(tmp_path / "runs2"), "--json").output)
    status = {i["id"]: i["status"] for i in result["instances"]}
    assert status["bad"] == "failed" and status["after_bad"] == "skipped"


def test_resume_after_kill_9_of_the_driver(tmp_path, stages_module):
    runs = tmp_path / "runs"
    marker = tmp_path / "slow-started"
    path = _write(tmp_path, f'''
        [pipeline]
        concurrency = 1
        [stages.first]
        python = "{stages_module}:make"
        params = {{ n = 1 }}
        [stages.slow]
        python = "{stages_module}:slow"
        params = {{ seconds = 4.0, marker = "{marker}" }}
        deps = ["first"]
        [stages.last]
        python = "{stages_module}:add"
        params = {{ values = [1, 2] }}
        deps = ["slow"]
    ''')
    cmd = [sys.executable, "-m", "rustorch_tools", "pipeline", "run", str(path), "--runs-dir", str(runs)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the slow stage never started"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    result = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    status = {i["id"]: i["status"] for i in json.loads(result.stdout)["instances"]}
    assert status["first"] == "cached" and status["last"] == "done"
    assert status["slow"] in ("done", "cached")  # adopted the orphaned attempt or re-ran it
    for stage in ("first", "slow", "last"):
        finished = [d for d in _stage_runs(runs, stage) if d["status"] == "finished"]
        assert len(finished) == 1, (stage, _stage_runs(runs, stage))


def test_example_pipeline_runs_small(tmp_path):
    runs = tmp_path / "runs"
    example = REPO / "examples" / "pipelines" / "mnist.toml"
    result = _cli("run", str(example), "--runs-dir", str(runs), "--var", "steps=1", "--var", "eval_limit=100",
                  "--json")
    assert result.exit_code == 0, result.output[-3000:]
    doc = json.loads(result.output)
    assert [i["id"] for i in doc["instances"]] == [
        "data", "train[lr=0.5,seed=1]", "train[lr=0.5,seed=2]", "train[lr=1.0,seed=1]",
        "train[lr=1.0,seed=2]", "eval", "gate", "report"]
    assert {i["status"] for i in doc["instances"]} == {"done"}
    train_runs = _stage_runs(runs, "train")
    assert len(train_runs) == 4 and {d["config"]["device"] for d in train_runs} == {"rustorch"}
    (report,) = _stage_runs(runs, "report")
    assert (runs / report["run_id"] / "artifacts" / "outputs" / "report.html").stat().st_size > 1000
    # A training stage's run replays on its own, bit for bit (issue 13: the pipeline example).
    first = runs / train_runs[0]["run_id"]
    proc = subprocess.run([sys.executable, "-m", "rustorch_tools", "replay", str(first), "--into",
                           str(tmp_path / "replays"), "--json"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["divergence"] is None and out["compared_values"] >= 3
