"""`rustorch-tools trace [RUNS_DIR] RUN_OR_PIPELINE -o trace.json [--json]`.

Exit codes: 0 written, 2 usage or I/O error (the source cannot be traced: not a run, not a
pipeline that ran; the output cannot be written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import InvalidNameError, RunNotFoundError
from ..store import atomic
from ..store.select import select_run
from .chrome import TraceSourceError, pipeline_events, run_events, to_trace


def _source(arg: str, runs_dir: Path | None) -> tuple[list[dict], str, list[str]]:
    warnings: list[str] = []
    path = Path(arg)
    if arg.endswith(".toml"):
        from ..pipeline.driver import status
        from ..pipeline.spec import PipelineError, parse

        try:
            p = parse(path)
            root = runs_dir if runs_dir is not None else ((p.dir / p.runs_dir) if p.runs_dir else Path("runs"))
            state = status(p, root)
        except PipelineError as exc:
            raise TraceSourceError(str(exc)) from None
        if state is None:
            raise TraceSourceError(f"pipeline {p.name} has not run in {root}")
        return pipeline_events(root, state, warnings), f"pipeline {p.name}", warnings
    if path.is_dir() and (runs_dir is None or not (runs_dir / arg).is_dir()):
        resolved = path.resolve()
        return run_events(resolved.parent, resolved.name, 1, warnings), f"run {resolved.name}", warnings
    root = runs_dir if runs_dir is not None else Path("runs")
    try:
        run_id = select_run(root, arg).name  # an id, a unique id prefix or a run name
        return run_events(root, run_id, 1, warnings), f"run {run_id}", warnings
    except (ValueError, RunNotFoundError, InvalidNameError) as exc:  # ValueError: not a run id
        raise TraceSourceError(str(exc)) from None


@click.command("trace")
@click.argument("source", metavar="RUN_OR_PIPELINE")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The trace JSON to write (open it in ui.perfetto.dev or chrome://tracing).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="RUNS_DIR to find run ids (and a pipeline's runs) in; default ./runs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {output, spans, events, title, warnings} as one JSON object.")
def trace_cmd(source: str, output: Path, runs_dir: Path | None, as_json: bool) -> None:
    """Export a run (folder, or id / id prefix / name in RUNS_DIR, default ./runs) or a
    pipeline (PIPELINE.toml, its last execution) as a Chrome Trace Event JSON: stages, epochs,
    steps with phases, evaluation, checkpoint saves, and profiler operator events, on one
    timeline.

    Exit codes: 0 written, 2 usage or I/O error (not a run, not a pipeline that ran, the
    output cannot be written).
    """
    try:
        events, title, warnings = _source(source, runs_dir)
    except TraceSourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    doc = to_trace(events, title, warnings)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_output(output, json.dumps(doc, indent=1, sort_keys=True, default=str).encode())
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    spans = sum(1 for e in events if e["ph"] == "X")
    if as_json:
        click.echo(json.dumps({"output": str(output), "spans": spans, "events": len(events),
                               "title": title, "warnings": warnings}))
        return
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {output}: {spans} spans, {len(events)} events ({title})")


COMMANDS = [trace_cmd]
