"""The Dask executor on a 2-worker LocalCluster (loopback): a pipeline runs there, and a worker
removed mid-stage has its stage rescheduled on the other one, ending with exactly one
successful run per stage."""

from __future__ import annotations

import textwrap
import threading
import time

from click.testing import CliRunner
from distributed import Client, LocalCluster
from test_pipeline import stages_module  # noqa: F401 - the fixture writing the stage module

from rustorch_tools.cli import cli
from rustorch_tools.pipeline.driver import Driver
from rustorch_tools.pipeline.executors import DaskExecutor
from rustorch_tools.pipeline.spec import parse
from rustorch_tools.store import runs as store_runs
from rustorch_tools.store.layout import iter_run_dirs


def test_worker_killed_mid_stage_is_retried_elsewhere(tmp_path, stages_module):  # noqa: F811
    runs = tmp_path / "runs"
    marker = tmp_path / "slow-started"
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(f'''
        [pipeline]
        concurrency = 2
        [stages.first]
        python = "{stages_module}:add"
        params = {{ values = [1, 2] }}
        [stages.slow]
        python = "{stages_module}:slow"
        params = {{ seconds = 3.0, marker = "{marker}" }}
        deps = ["first"]
        [stages.last]
        python = "{stages_module}:add"
        params = {{ values = [3], offset = 1 }}
        deps = ["slow"]
    '''))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        driver = Driver(parse(path), runs, DaskExecutor(client))
        box: dict = {}
        thread = threading.Thread(target=lambda: box.setdefault("outcome", driver.run()))
        thread.start()
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the slow stage never started"
        busy = [addr for addr, keys in client.processing().items()
                if any(str(k).startswith("stage-slow") for k in keys)]
        assert len(busy) == 1, client.processing()
        client.sync(cluster.scheduler.remove_worker, address=busy[0], stimulus_id="test-kill", close=True)
        thread.join(timeout=180)
        assert not thread.is_alive()
        assert len(client.scheduler_info()["workers"]) == 1
        # the CLI, pointed at the scheduler's address: everything cached now
        result = CliRunner().invoke(cli, ["pipeline", "run", str(path), "--runs-dir", str(runs), "--executor",
                                          "dask", "--scheduler", cluster.scheduler_address])
        assert result.exit_code == 0 and result.output.count("cached") == 3, result.output
    outcome = box["outcome"]
    assert outcome.status == "succeeded", {k: v.to_json() for k, v in outcome.instances.items()}
    docs = [store_runs.read_run(d) for d in iter_run_dirs(runs)]
    for stage in ("first", "slow", "last"):
        finished = [d for d in docs if d["tags"]["stage"] == stage and d["status"] == "finished"]
        assert len(finished) == 1, stage
