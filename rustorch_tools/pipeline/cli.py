"""`rustorch-tools pipeline run|plan|status PIPELINE.toml` (see docs/pipelines.md).

Exit codes: 0 every stage done or cached, 1 a stage failed, 2 a bad pipeline (nothing ran).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import RustorchToolsError
from .spec import Pipeline, PipelineError, parse

SYMBOL = {"cached": "=", "done": "+", "run": ">", "failed": "!", "skipped": "-", "running": "~",
          "pending": "?"}


def _parse_vars(items: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; VALUE is read as a TOML value (1, 0.5, true, "x"), else as text."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            click.echo(f"error: --var {item!r}: expected KEY=VALUE", err=True)
            sys.exit(2)
        try:
            out[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text
    return out


def _load(path: str, var: tuple[str, ...] = ()) -> Pipeline:
    try:
        return parse(path, _parse_vars(var))
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _runs_dir(p: Pipeline, runs_dir: Path | None) -> Path:
    if runs_dir is not None:
        return runs_dir
    return (p.dir / p.runs_dir) if p.runs_dir else Path("runs")


def _table(rows: list[dict[str, Any]]) -> None:
    width = max((len(r["id"]) for r in rows), default=5)
    for r in rows:
        extra = f"  ({r['error']})" if r.get("error") else ""
        run = r.get("run_id") or ""
        click.echo(f"{SYMBOL.get(r['status'], ' ')} {r['id']:<{width}}  {r['status']:<8} {run}{extra}")


def _driver(p: Pipeline, runs_dir: Path, executor: Any = None, force: tuple[str, ...] = (),
            concurrency: int | None = None) -> Any:
    from .driver import Driver

    try:
        return Driver(p, runs_dir, executor, force, concurrency)
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


PIPELINE = click.argument("pipeline_file", metavar="PIPELINE.toml", type=click.Path(dir_okay=False))
RUNS = click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                    help="RUNS_DIR for the stage runs (default: [pipeline].runs_dir, else ./runs).")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
VARS = click.option("--var", multiple=True, metavar="KEY=VALUE", help="Override a [vars] entry (repeatable).")


@click.group("pipeline")
def pipeline_group() -> None:
    """Multi-stage pipelines: a DAG of trainer, Python and command stages, each a run."""


@pipeline_group.command("plan")
@PIPELINE
@RUNS
@click.option("--force", multiple=True, metavar="STAGE", help="Plan STAGE as re-run (repeatable).")
@VARS
@AS_JSON
def plan_cmd(pipeline_file: str, runs_dir: Path | None, force: tuple[str, ...], var: tuple[str, ...],
             as_json: bool) -> None:
    """Print what `run` would do: '=' cached, '>' run."""
    p = _load(pipeline_file, var)
    d = _driver(p, _runs_dir(p, runs_dir), force=force)
    try:
        rows = [s.to_json() for s in d.plan()]
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({"pipeline": p.name, "instances": rows}, indent=1))
    else:
        _table(rows)


@pipeline_group.command("run")
@PIPELINE
@RUNS
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: a process pool here; dask: a dask.distributed scheduler (--scheduler).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler, e.g. tcp://HOST:8786.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Executions at once (default: [pipeline].concurrency).")
@click.option("--force", multiple=True, metavar="STAGE", help="Re-run STAGE even when cached (repeatable).")
@VARS
@AS_JSON
def run_cmd(pipeline_file: str, runs_dir: Path | None, executor: str, scheduler: str | None,
            concurrency: int | None, force: tuple[str, ...], var: tuple[str, ...], as_json: bool) -> None:
    """Run the pipeline: cached stages are skipped, the rest run as runs in RUNS_DIR."""
    from .executors import DaskExecutor, LocalExecutor

    p = _load(pipeline_file, var)
    if executor == "dask" and not scheduler:
        click.echo("error: --executor dask needs --scheduler tcp://HOST:PORT", err=True)
        sys.exit(2)
    d = _driver(p, _runs_dir(p, runs_dir), force=force, concurrency=concurrency)
    try:
        d.executor = DaskExecutor(scheduler) if executor == "dask" else LocalExecutor(d.concurrency)
    except (OSError, TimeoutError, ValueError) as exc:  # no scheduler there, a bad address
        click.echo(f"error: cannot reach the Dask scheduler {scheduler}: {exc}", err=True)
        sys.exit(2)
    try:
        outcome = d.run()
    except (RustorchToolsError, OSError) as exc:  # the state folder: a link, no space, ...
        click.echo(f"error: pipeline state under {d.runs_dir}: {exc}", err=True)
        sys.exit(2)
    finally:
        d.executor.close()
    rows = [s.to_json() for s in outcome.instances.values()]
    if as_json:
        click.echo(json.dumps({"pipeline": p.name, "status": outcome.status, "wall_s": outcome.wall_s,
                               "instances": rows}, indent=1))
    else:
        _table(rows)
        click.echo(f"pipeline {p.name}: {outcome.status} in {outcome.wall_s:.1f} s")
    sys.exit(0 if outcome.status == "succeeded" else 1)


@pipeline_group.command("status")
@PIPELINE
@RUNS
@AS_JSON
def status_cmd(pipeline_file: str, runs_dir: Path | None, as_json: bool) -> None:
    """Show the last execution of the pipeline (exit 1 when it failed or never ran)."""
    from .driver import status

    p = _load(pipeline_file)
    try:
        doc = status(p, _runs_dir(p, runs_dir))
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if doc is None:
        click.echo(f"pipeline {p.name} has not run in {_runs_dir(p, runs_dir)}")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(doc, indent=1))
    else:
        _table(list(doc["instances"].values()))
        import time

        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(doc.get("updated_at") or 0)))
        click.echo(f"pipeline {p.name}: {doc['status']} (updated {when})")
    sys.exit(0 if doc["status"] == "succeeded" else 1)


COMMANDS = [pipeline_group]
