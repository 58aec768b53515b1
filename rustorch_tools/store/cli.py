"""CLI commands of rustorch_tools.store (added to the group in rustorch_tools.cli).

    rustorch-tools runs list [--root runs] [--json]
    rustorch-tools runs show RUN_ID [--root runs] [--json]

Exit codes: 0 clean, 1 a run that cannot be read (listed, never skipped), 2 usage / I/O error.
`--json` output: `list` prints one array of objects {run_id, name, status, stored_status,
started_at, heartbeat_at, last_step, error}; `show` prints one object {run, metrics:
{rows, corrupt_lines, incomplete_tail, names}, events: [...], manifest: {files, mismatches}}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidNameError, RunNotFoundError, RustorchToolsError
from . import jsonl, layout, manifest, runs


def _summary_row(run_dir: Path) -> dict[str, Any]:
    try:
        doc = runs.read_run(run_dir)
    except RustorchToolsError as exc:
        return {"run_id": run_dir.name, "name": None, "status": "unreadable", "stored_status": None,
                "started_at": None, "heartbeat_at": None, "last_step": None, "error": str(exc)}
    return {
        "run_id": doc["run_id"], "name": doc["name"], "status": runs.effective_status(doc),
        "stored_status": doc["status"], "started_at": doc["started_at"],
        "heartbeat_at": doc["heartbeat_at"], "last_step": (doc.get("summary") or {}).get("step"),
        "error": (doc.get("error") or {}).get("message"),
    }


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@click.group("runs")
def runs_group() -> None:
    """Inspect the runs/ directory."""


@runs_group.command("list")
@click.option("--root", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_runs(root: Path, as_json: bool) -> None:
    """One line per run: id, name, status (stale running runs show as crashed), last step."""
    if not root.is_dir():
        raise click.UsageError(f"no runs directory at {root}")
    rows = [_summary_row(d) for d in layout.iter_run_dirs(root)]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for r in rows:
            step = "-" if r["last_step"] is None else r["last_step"]
            click.echo(f"{r['run_id']:<48} {r['status']:<10} {_when(r['started_at']):<19} step {step:<8} {r['name'] or ''}")
            if r["status"] == "unreadable":
                click.echo(f"    {r['error']}")
    if any(r["status"] == "unreadable" for r in rows):
        raise SystemExit(1)


@runs_group.command("show")
@click.argument("run_id")
@click.option("--root", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def show_run(run_id: str, root: Path, as_json: bool) -> None:
    """run.json, metric and event line checks, and manifest verification of one run."""
    try:
        run_dir = layout.run_dir(root, run_id)
        doc = runs.read_run(run_dir)
    except (RunNotFoundError, InvalidNameError) as exc:
        raise click.UsageError(str(exc)) from None
    except RustorchToolsError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    rows = corrupt = 0
    incomplete = False
    names: set[str] = set()
    for res in jsonl.scan(run_dir / layout.METRICS):
        if res.row is not None:
            rows += 1
            names.update(k for k in res.row if k not in ("step", "time", "rank") and not k.startswith("_"))
        elif not res.complete:
            incomplete = True
        else:
            corrupt += 1
    events = list(runs.iter_events(run_dir))
    mismatches = [str(m) for m in manifest.verify(run_dir)]
    files = len(manifest.read_manifest(run_dir)["files"])
    report = {
        "run": {**doc, "effective_status": runs.effective_status(doc)},
        "metrics": {"rows": rows, "corrupt_lines": corrupt, "incomplete_tail": incomplete, "names": sorted(names)},
        "events": events,
        "manifest": {"files": files, "mismatches": mismatches},
    }
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"{doc['run_id']}  {doc['name']}  {report['run']['effective_status']}")
        click.echo(f"  started {_when(doc['started_at'])}  ended {_when(doc['ended_at'])}  heartbeat {_when(doc['heartbeat_at'])}")
        if doc.get("parent"):
            click.echo(f"  parent {doc['parent']['run_id']} ({doc['parent']['relation']})")
        if doc.get("error"):
            click.echo(f"  error {doc['error']['type']}: {doc['error']['message']}")
        click.echo(f"  metrics: {rows} rows, {corrupt} corrupt lines{', incomplete last line' if incomplete else ''}; "
                   f"names: {', '.join(sorted(names)) or '-'}")
        click.echo(f"  events: {', '.join(e['event'] for e in events) or '-'}")
        click.echo(f"  manifest: {files} files, {len(mismatches)} mismatches")
        for m in mismatches:
            click.echo(f"    {m}")
    if corrupt or mismatches:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [runs_group]
