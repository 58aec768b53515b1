"""rustorch_tools.train: the loop (bit-exact resume, accumulation, early stopping, autocast,
quiet progress, observability, profiling) and the config registry, on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rustorch_tools
from rustorch_tools.store import runs as store_runs
from rustorch_tools.train import (
    ConfigError,
    Trainer,
    TrainerError,
    build_trainer,
    check,
    run_config,
)
from rustorch_tools.train.loaders import TensorLoader


def _config(**over):
    cfg = {"name": "tiny", "seed": 3, "device": "rustorch", "epochs": 2, "max_steps_per_epoch": 4,
           "model": {"name": "mlp", "in_features": 8, "hidden": [16], "dropout": 0.3},  # dropout: resume must restore RNG
           "optimizer": {"name": "adam", "lr": 1e-2},
           "scheduler": {"name": "onecycle", "max_lr": 2e-2},
           "data": {"name": "synthetic", "samples": 160, "eval_samples": 32, "batch_size": 16,
                    "shape": [8]}}
    cfg.update(over)
    return cfg


def _params(model):
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _losses(run_dir):
    return {r["step"]: r["train/loss"] for r in store_runs.iter_metrics(run_dir) if "train/loss" in r}


class _Crash(Exception):
    pass


def test_resume_after_crash_is_bit_exact(tmp_path):
    cfg = _config(checkpoint_every=3, checkpoint_each_epoch=False)
    with rustorch_tools.start_run(tmp_path, "straight", config=cfg) as run:
        straight = build_trainer(cfg, run)
        straight.fit()
    want, want_losses = _params(straight.model), _losses(run.dir)

    run = rustorch_tools.start_run(tmp_path, "crashy", config=cfg)
    crashy = build_trainer(cfg, run)
    real_step = crashy._train_step

    def step_then_crash(*args, **kwargs):
        if crashy.step == 5:  # mid second epoch; the latest checkpoint is step 3 (mid first)
            raise _Crash
        return real_step(*args, **kwargs)

    crashy._train_step = step_then_crash
    with pytest.raises(_Crash):
        crashy.fit()
    run.finish("failed")

    with rustorch_tools.attach_run(tmp_path, run.run_id) as again:
        resumed = build_trainer(cfg, again)  # a fresh model, optimizer, scheduler
        result = resumed.fit(resume=True)
    assert result.resumed_from and result.resumed_from.endswith("ckpt-0000000003.safetensors")
    assert result.step == 8 and result.epochs == 2
    got = _params(resumed.model)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k
    losses = _losses(again.dir)
    for step in range(3, 8):  # the re-run steps repeat the straight run's losses exactly
        assert losses[step] == want_losses[step], step
    from rustorch_tools.governance.validate import validate_one

    findings = validate_one(tmp_path, again.dir).findings  # the repeated steps are a documented resume
    assert not [f for f in findings if f.code == "RT203"], findings


def test_gradient_accumulation_matches_the_big_batch():
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    finals = []
    for batch, accum in ((32, 1), (16, 2)):
        torch.manual_seed(1)
        model = torch.nn.Linear(8, 4)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        loader = TensorLoader(x, y, batch, shuffle=False)
        Trainer(model, opt, loader, "rustorch", grad_accum=accum, epochs=1, show_progress=False).fit()
        finals.append(_params(model))
    for k in finals[0]:
        torch.testing.assert_close(finals[0][k], finals[1][k], rtol=1e-5, atol=1e-6)


def test_early_stopping_stops_and_records_the_event(tmp_path):
    cfg = _config(epochs=6, optimizer={"name": "sgd", "lr": 0.0}, scheduler=None,  # nothing improves
                  early_stopping={"metric": "eval/loss", "mode": "min", "patience": 2})
    del cfg["scheduler"]
    out = run_config(cfg, tmp_path)
    assert out["stopped_early"] and out["epochs"] == 3  # best at 1, no better at 2 and 3
    rows = [r for r in store_runs.iter_metrics(out["run_dir"]) if "early_stopping/stopped_epoch" in r]
    assert [r["early_stopping/stopped_epoch"] for r in rows] == [3]


def test_autocast_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda kind: False)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TrainerError, match="autocast is not available on device type 'rustorch'"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                TensorLoader(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), 2), "rustorch",
                autocast=True)


def test_autocast_on_cpu_trains_in_bfloat16():
    model = torch.nn.Linear(8, 4)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    loader = TensorLoader(torch.randn(16, 8), torch.randint(0, 4, (16,)), 8)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, "cpu", autocast=True,
            show_progress=False).fit()
    assert seen and set(seen) == {torch.bfloat16}


def test_run_gets_observability_profile_and_quiet_output(tmp_path, capsys):
    out = run_config(_config(epochs=1, profile_steps=2), tmp_path)
    assert "epoch 1" not in capsys.readouterr().out  # stdout is not a TTY: no progress bar
    rows = list(store_runs.iter_metrics(out["run_dir"]))
    step_rows = [r for r in rows if "train/loss" in r]
    assert len(step_rows) == 4
    for name in ("time/data_s", "time/forward_s", "time/backward_s", "time/optimizer_s",
                 "train/samples_per_s", "train/lr"):
        assert all(r[name] >= 0 for r in step_rows), name
    epoch_row = next(r for r in rows if "epoch" in r)
    assert "fallback/total" in epoch_row and "memory/max_allocated_bytes" in epoch_row
    assert "eval/accuracy" in epoch_row
    artifacts = {p.name: p for p in (Path(out["run_dir"]) / "artifacts").iterdir()}
    trace = json.loads(artifacts["profile.trace.json"].read_text())
    assert any(e.get("name", "").startswith("aten::") for e in trace["traceEvents"])
    timeline = next(p for n, p in artifacts.items() if n.startswith("timeline-"))
    cats = {json.loads(line)["cat"] for line in timeline.read_text().splitlines()}
    assert {"epoch", "step", "phase", "eval", "checkpoint", "profile"} <= cats
    doc = store_runs.read_run(out["run_dir"])
    assert doc["config"]["entry_point"] == "rustorch_tools.train.config:run_config"
    assert doc["seed"] == 3


def test_transformer_and_resnet_build_and_step(tmp_path):
    lm = _config(epochs=1, max_steps_per_epoch=1, model={"name": "small_transformer", "vocab": 16,
                 "d_model": 16, "heads": 2, "layers": 1, "max_len": 8},
                 data={"name": "synthetic_tokens", "samples": 8, "eval_samples": 4, "batch_size": 4,
                       "seq_len": 8, "vocab": 16, "period": 4})
    assert run_config(lm, tmp_path)["steps"] == 1
    rn = _config(epochs=1, max_steps_per_epoch=1, model={"name": "resnet18", "in_channels": 1},
                 data={"name": "synthetic", "samples": 4, "eval_samples": 2, "batch_size": 2,
                       "shape": [1, 32, 32]})
    assert run_config(rn, tmp_path)["steps"] == 1


def test_config_problems_are_listed_together():
    bad = _config(epochs="two", model={"name": "vgg"}, optimizer={"name": "adam", "lr": "fast"},
                  scheduler={"name": "onecycle"}, early_stopping={"mode": "max"})
    problems = check(bad)
    text = "\n".join(problems)
    assert "epochs" in text and "unknown model 'vgg'" in text and "'lr' must be float" in text
    assert "missing required parameter 'max_lr'" in text and "'metric'" in text
    with pytest.raises(ConfigError):
        run_config(bad, "unused")
