"""Races with a live writer: lines being appended are never corrupt, a live run never moves."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

from support.governance_synth import make_run

from rustorch_tools.governance.quarantine import quarantine_runs
from rustorch_tools.governance.repair import repair_runs
from rustorch_tools.governance.validate import validate_runs
from rustorch_tools.store.atomic import atomic_write_json
from rustorch_tools.store.jsonl import encode_row


def _writer(run: str, stop, started) -> None:
    """Appends rows like a slow writer: each line in two writes with a pause between, so a
    reader regularly sees a half-written last line; refreshes the heartbeat as it goes."""
    d = Path(run)
    doc = json.loads((d / "run.json").read_text())
    fd = os.open(d / "metrics.jsonl", os.O_WRONLY | os.O_APPEND)
    step = 1000
    started.set()
    try:
        while not stop.is_set():
            line = encode_row({"step": step, "time": time.time(), "loss": 1.0 / step})
            os.write(fd, line[:25])
            time.sleep(0.002)
            os.write(fd, line[25:])
            step += 1
            if step % 20 == 0:
                atomic_write_json(d / "run.json", {**doc, "heartbeat_at": time.time()})
    finally:
        os.close(fd)


def test_validate_quarantine_repair_during_live_writes(tmp_path):
    d = make_run(tmp_path, "live", rows=50, status="running")
    make_run(tmp_path, "done", rows=50)
    ctx = mp.get_context("spawn")
    stop, started = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(d), stop, started))
    proc.start()
    try:
        assert started.wait(60)
        seen_partial = False
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            report = validate_runs(tmp_path, jobs=1)
            live = next(r for r in report.runs if r.folder == "live")
            assert live.live
            codes = {f.code for f in live.findings}
            assert codes <= {"RT208"}, [f.to_dict() for f in live.findings]
            seen_partial |= "RT208" in codes
            out = quarantine_runs(tmp_path, jobs=1)
            assert out.moved == []
            assert repair_runs(tmp_path, jobs=1).actions == []
        assert d.is_dir()
        assert seen_partial  # the race was really exercised
    finally:
        stop.set()
        proc.join(timeout=30)
    assert proc.exitcode == 0
    report = validate_runs(tmp_path, jobs=1)
    assert [f.code for f in report.all_findings()
            if f.code not in ("RT404", "RT208")] == []
