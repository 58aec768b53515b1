"""CLI commands of rustorch_tools.store (added to the group in rustorch_tools.cli).

    rustorch-tools runs list [RUNS_DIR] [--json]
    rustorch-tools runs show [RUNS_DIR] RUN [--json]

RUNS_DIR defaults to $RUSTORCH_RUNS_DIR (`--root DIR` / `--runs-dir DIR` are older spellings);
RUN is a run id, a unique prefix of one, or a run name.

Exit codes: 0 clean, 1 a run that cannot be read (listed, never skipped) or, for `show`, has
corrupt metric lines or manifest mismatches, 2 usage / I/O error.
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
from tabulate import tabulate

from ..errors import InvalidNameError, RunNotFoundError, RustorchToolsError
from . import jsonl, layout, manifest, runs
from .select import select_run


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


_RUNS_DIR_OPT = click.option("--runs-dir", "--root", "runs_dir", type=click.Path(path_type=Path),
                             required=True)


def _table(rows: list[dict[str, Any]]) -> str:
    """Left-aligned text columns (ids that start with digits stay ids, not numbers)."""
    cells = [[layout.printable(r["run_id"]), r["status"], _when(r["started_at"]),
              "-" if r["last_step"] is None else r["last_step"], layout.printable(r["name"] or ""),
              layout.printable(r["error"] or "") if r["status"] == "unreadable" else ""]
             for r in rows]
    return tabulate(cells, headers=["run", "status", "started", "step", "name", "error"],
                    tablefmt="simple", disable_numparse=True)


@runs_group.command("list")
@_RUNS_DIR_OPT
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_runs(runs_dir: Path, as_json: bool) -> None:
    """One line per run: id, status (stale running runs show as crashed), start, last step,
    name.

    Exit codes: 0 every run readable, 1 a run cannot be read (listed with its error),
    2 usage or I/O error.
    """
    if not runs_dir.is_dir():
        raise click.UsageError(f"no runs directory at {runs_dir}")
    rows = [_summary_row(d) for d in layout.iter_run_dirs(runs_dir)]
    if as_json:
        click.echo(json.dumps(rows))
    elif rows:
        click.echo(_table(rows))
    else:
        click.echo(f"no runs in {runs_dir}")
    if any(r["status"] == "unreadable" for r in rows):
        raise SystemExit(1)


@runs_group.command("show")
@click.argument("run")
@_RUNS_DIR_OPT
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def show_run(run: str, runs_dir: Path, as_json: bool) -> None:
    """run.json, metric and event line checks, and manifest verification of one RUN (an id,
    a unique id prefix or a run name).

    Exit codes: 0 clean, 1 the run cannot be read or has corrupt metric lines or manifest
    mismatches, 2 usage or I/O error (no such run, an ambiguous prefix).
    """
    try:
        run_dir = select_run(runs_dir, run)
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
        pr = layout.printable
        click.echo(f"{pr(doc['run_id'])}  {pr(doc['name'])}  {report['run']['effective_status']}")
        click.echo(f"  started {_when(doc['started_at'])}  ended {_when(doc['ended_at'])}  heartbeat {_when(doc['heartbeat_at'])}")
        if doc.get("parent"):
            click.echo(f"  parent {doc['parent']['run_id']} ({doc['parent']['relation']})")
        if doc.get("error"):
            click.echo(f"  error {pr(doc['error']['type'])}: {pr(doc['error']['message'])}")
        click.echo(f"  metrics: {rows} rows, {corrupt} corrupt lines{', incomplete last line' if incomplete else ''}; "
                   f"names: {', '.join(pr(n) for n in sorted(names)) or '-'}")
        click.echo(f"  events: {', '.join(e['event'] for e in events) or '-'}")
        click.echo(f"  manifest: {files} files, {len(mismatches)} mismatches")
        for m in mismatches:
            click.echo(f"    {pr(m)}")
    if corrupt or mismatches:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [runs_group]
