"""`repair`: fix what is recoverable, keep every byte, audit each change with digests.

This module decides what to repair (from validation) and records it; the on-disk work is
done by the store's primitives (rustorch_tools/store/repair.py). Repairs, only on runs that
are not live and hold no links or special files, in this order:
- `cut_torn`: a torn last line of metrics.jsonl / events.jsonl (RT202) is moved into
  `<file>.<unix time>.orphan` next to it (written and fsynced first), then the file is
  truncated to its last newline, under the same flock writers take to append;
- `cut_torn_lines`: torn lines in the middle of the file (RT209: a writer died mid-line and
  another appended after it) move into one `.orphan` file, the rest is rewritten atomically;
  lines that fail their CRC otherwise (RT201) stay in place as evidence;
- `set_aside_temp`: a leftover temp file of an interrupted atomic write (RT504) is renamed to
  `<its name>.<unix time>.orphan` at the top of the run folder;
- `migrate`: run.json of an older schema version is rewritten as the current version;
- `mark_crashed`: `running` with a stale heartbeat becomes `crashed` (`ended_at` = last
  heartbeat) and a `crashed` event is appended;
- `regenerate_summary`: run.json's summary is recomputed from the valid metric rows;
- `rebuild_manifest`: a missing manifest.json is rebuilt from the files present, every entry
  `verified: false`;
- crashed runs only (the writer died between two steps of a checkpoint/artifact save):
  `adopt_untracked` records files missing from the manifest (RT305) as `verified: false`, and
  `forget_rotated` drops the entries of rotated-away checkpoints (RT304 for a checkpoint
  recorded before one still present), keeping the dropped entries in the audit record.
A finished or failed run's untracked or missing files are never touched: no writer was
interrupted there, so they are evidence.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RustorchToolsError
from ..store import jsonl, layout, manifest, runs
from ..store import repair as store_repair
from ..store.atomic import fsync_dir
from ..store.jsonl import nonfinite_text
from ..store.runstore import RunStore
from .jsonl_check import check_metric_row
from .run_check import RunResult, summary_metrics
from .validate import ValidationReport, validate_runs


@dataclass
class Action:
    run_id: str
    action: str
    file: str  # relative to RUNS_DIR
    detail: dict = field(default_factory=dict)
    before_sha256: str | None = None
    after_sha256: str | None = None
    done: bool = False
    error: str | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "action": self.action, "file": self.file,
                "detail": self.detail, "before_sha256": self.before_sha256,
                "after_sha256": self.after_sha256, "done": self.done, "error": self.error}


@dataclass
class RepairOutcome:
    report: ValidationReport
    actions: list[Action] = field(default_factory=list)
    dry_run: bool = False

    @property
    def failed(self) -> list[Action]:
        return [a for a in self.actions if a.error]

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "actions": [a.to_dict() for a in self.actions]}


def _digest(path: Path) -> str | None:
    if not path.is_file() or path.is_symlink():
        return None
    return manifest.sha256_file(path)


# A run with links or special files is never written to: an append or rewrite could follow
# a link out of RUNS_DIR. Such runs are for `quarantine`, not `repair`.
_UNSAFE = frozenset({"RT506", "RT901"})


def plan(res: RunResult) -> list[Action]:
    """The repairs `res` calls for, in the order they are applied."""
    if res.live or any(f.code in _UNSAFE for f in res.findings):
        return []
    acts: list[Action] = []
    for name, offset in sorted(res.torn.items()):
        acts.append(Action(res.folder, "cut_torn", f"{res.rel}/{name}", {"offset": offset}))
    for name, lines in sorted(res.torn_lines.items()):
        acts.append(Action(res.folder, "cut_torn_lines", f"{res.rel}/{name}",
                           {"lines": list(lines)}))
    for rel in res.temps:
        acts.append(Action(res.folder, "set_aside_temp", f"{res.rel}/{rel}"))
    rj = f"{res.rel}/{layout.RUN_JSON}"
    if res.schema_from is not None:
        acts.append(Action(res.folder, "migrate", rj, {"from_version": res.schema_from}))
    if res.stale:
        acts.append(Action(res.folder, "mark_crashed", rj))
    if (res.summary_stale or res.torn.get(layout.METRICS) is not None) and not res.data_lost:
        # Only when the rows prove the summary stale (they go further than it): a summary
        # ahead of the rows is evidence of lost rows and is kept (RT212).
        acts.append(Action(res.folder, "regenerate_summary", rj))
    mf = f"{res.rel}/{layout.MANIFEST}"
    if res.manifest_missing:
        acts.append(Action(res.folder, "rebuild_manifest", mf))
    elif res.status == "crashed":  # stale `running` counts: it is marked crashed above
        if res.untracked:
            acts.append(Action(res.folder, "adopt_untracked", mf, {"files": list(res.untracked)}))
        if res.rotated:
            acts.append(Action(res.folder, "forget_rotated", mf, {"files": list(res.rotated)}))
    return acts


def summary_from_metrics(run_dir: Path) -> dict:
    """The writer's summary rebuilt from the valid rows (streamed): last value of every
    metric (non-finite as "nan"/"inf"/"-inf", run.json refuses NaN) and the last step."""
    metrics: dict = {}
    step = None
    for raw in RunStore.of_run_dir(run_dir).iter_valid_rows("metrics"):
        problem = check_metric_row(raw)
        if problem is not None and problem[0] != "RT205":
            continue  # rows validation rejects do not count (same rule as RT404)
        row = jsonl.restore_nonfinite(raw)
        metrics.update(summary_metrics(row))
        s = row.get("step")
        if isinstance(s, int) and (step is None or s > step):
            step = s
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            metrics[key] = nonfinite_text(value)
    out: dict = {"metrics": metrics, "updated_at": time.time()}
    if step is not None:
        out["step"] = step
    return out


def _apply_run_json(run_dir: Path, acts: list[Action]) -> None:
    names = {a.action for a in acts}
    summary = summary_from_metrics(run_dir) if "regenerate_summary" in names else None
    files = RunStore.of_run_dir(run_dir)

    def change(doc: dict) -> None:
        if summary is not None:
            old = doc.get("summary")
            old = old if isinstance(old, dict) else {}  # a summary of the wrong type is replaced
            if isinstance(old.get("step"), int) and old["step"] > summary.get("step", -1):
                raise store_repair.RepairConflict("the summary goes further than the rows "
                                                  "left; kept as evidence of lost rows")
        # Every overwritten value is kept: run.json as it was on disk, byte for byte.
        kept = store_repair.save_orphan(run_dir, layout.RUN_JSON, files.read_bytes(layout.RUN_JSON))
        for a in acts:
            a.detail.setdefault("previous", kept)
        if "mark_crashed" in names:
            store_repair.mark_crashed(doc)
        if summary is not None:
            doc["summary"] = summary

    with files.lock():
        files.update(change)


def apply(runs_dir: Path, res: RunResult, acts: list[Action]) -> None:
    run_dir = runs_dir / res.folder
    try:
        for a in acts:  # JSONL files and temp files first: run.json's summary reads metrics
            if a.action == "cut_torn":
                a.detail.update(store_repair.cut_torn_tail(runs_dir / a.file, a.detail["offset"]))
            elif a.action == "cut_torn_lines":
                a.detail.update(store_repair.cut_torn_lines(runs_dir / a.file, a.detail["lines"]))
            elif a.action == "set_aside_temp":
                a.detail.update(store_repair.set_aside(run_dir, a.file[len(res.rel) + 1:]))
            else:
                continue
            a.done = True
        rj = [a for a in acts if a.file.endswith("/" + layout.RUN_JSON)]
        if rj:
            _apply_run_json(run_dir, rj)
            for a in rj:
                a.done = True
            if any(a.action == "mark_crashed" for a in rj):
                runs.append_event(run_dir, "crashed", {"by": "rustorch-tools repair"})
            if any(a.action == "migrate" for a in rj):
                runs.append_event(run_dir, "migrated", {"from_version": res.schema_from})
        for a in acts:
            if a.action == "rebuild_manifest":
                a.detail.update(store_repair.rebuild_manifest(run_dir))
            elif a.action == "adopt_untracked":
                a.detail.update(store_repair.adopt_files(run_dir, a.detail["files"]))
            elif a.action == "forget_rotated":
                a.detail.update(store_repair.forget_files(run_dir, a.detail["files"]))
            else:
                continue
            a.done = True
    except (RustorchToolsError, OSError, ValueError) as e:
        for a in acts:
            if not a.done:
                a.error = f"{type(e).__name__}: {e}"
    for a in acts:
        a.after_sha256 = _digest(runs_dir / a.file)
    done = [a.action for a in acts if a.done]
    if done:
        try:
            runs.append_event(run_dir, "repaired", {"actions": done})
        except (RustorchToolsError, OSError):
            pass  # the audit entry is the authoritative record


def repair_runs(runs_dir: Path, dry_run: bool = False, jobs: int | None = None,
                lock_timeout: float | None = None, now: float | None = None) -> RepairOutcome:
    """Validate RUNS_DIR (liveness judged at `now`, default the current time), then apply
    `plan` to every run and append one audit entry with every action."""
    store = RunStore(runs_dir)
    runs_dir = store.root
    kw = {} if lock_timeout is None else {"timeout": lock_timeout}
    store.reserved(layout.AUDIT_DIR, create=False)  # refuse before changing anything
    # A dry run reads only, so it does not take (or create) the lock.
    with nullcontext() if dry_run else store.tree_lock(**kw):
        report = validate_runs(runs_dir, jobs=jobs, now=now)
        out = RepairOutcome(report, dry_run=dry_run)
        for res in report.runs:
            acts = plan(res)
            if not acts:
                continue
            if not dry_run:
                for a in acts:
                    a.before_sha256 = _digest(runs_dir / a.file)
                # Write-ahead: the plan (with the digests it starts from) is audited before
                # the first byte changes, so a kill mid-repair leaves no unaudited change.
                store.audit_append("repair-intent", {
                    "run_id": res.folder, "actions": [a.to_dict() for a in acts]})
                apply(runs_dir, res, acts)
            out.actions.extend(acts)
        if not dry_run:
            fsync_dir(runs_dir)
            store.audit_append("repair", {"actions": [a.to_dict() for a in out.actions]})
    return out
