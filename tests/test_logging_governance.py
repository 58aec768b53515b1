"""Runs written by the logging API and checkpoints pass governance's `validate` cleanly."""

import math
import warnings

import pytest
import torch

import rustorch_tools
from rustorch_tools import checkpoint
from rustorch_tools.governance.validate import validate_runs


def test_runs_from_the_logging_api_validate_cleanly(tmp_path):
    model = torch.nn.Linear(4, 2)
    src = tmp_path / "artifact.txt"
    src.write_text("x")
    root = tmp_path / "runs"
    with rustorch_tools.start_run(root, name="plain", config={"lr": 0.1}, seed=1) as run:
        for step in range(30):
            run.log_metrics({"loss": 1 / (step + 1), "train/acc": step / 30}, step=step)
        run.save_checkpoint(model=model, step=29, keep_last=1)
        run.save_checkpoint(model=model, step=30, keep_last=1)
        run.log_artifact(src)
    with pytest.raises(ValueError):
        with rustorch_tools.start_run(root, name="failing") as bad:
            bad.log_metrics({"loss": 2.0}, step=0)
            raise ValueError("boom")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rustorch_tools.start_run(root, name="nan") as nan_run:
            nan_run.log_metrics({"loss": math.nan}, step=0)
    ranks = [rustorch_tools.start_run(root, run_id="ddp", rank=r) for r in range(3)]
    for r, run_r in enumerate(ranks):
        run_r.log_metrics({"loss": float(r)}, step=0)
    for run_r in ranks:
        run_r.finish()
    with rustorch_tools.start_run(root, name="child", parent=run, relation="finetune") as child:
        checkpoint.resume(run, model=model)
        child.log_metrics({"loss": 0.5}, step=0)
    with rustorch_tools.start_run(root, run_id=bad.run_id) as again:  # resume a failed run
        again.log_metrics({"loss": 1.0}, step=1)

    report = validate_runs(root, jobs=1)
    findings = [(f.code, f.severity.name, f.run_id, f.message) for f in report.all_findings()]
    serious = [f for f in findings if f[1] in ("ERROR", "WARNING") and f[0] != "RT205"]
    assert serious == [], findings
    assert report.exit_code(strict=False) == 0
    assert len(report.runs) == 5
