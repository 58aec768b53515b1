"""`dashboard RUNS_DIR -o dash.html`: governance and drift over time, one offline HTML file.

Sections (plotly charts, plots.py; plotly.js inline):
- findings over time: errors, warnings, notes and runs with errors per validation pass, from
  `.audit/validation-history.jsonl` (written by `watch` and `validate --incremental`); without
  a history, one read-only validation of now;
- metric drift: each chosen metric's per-run value over run start time, with `--threshold`
  lines; runs past a threshold are red and listed;
- device telemetry drift: step time, fallback op counts and peak accelerator memory per run
  over time (the `device/...` metrics `Run.log_device_telemetry` logs, and timing metrics).
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import jinja2

from ..governance.incremental import read_history
from ..governance.validate import validate_runs
from ..store.atomic import atomic_write_bytes
from .index import RunIndex
from .plots import BAD, Chart, drift_chart, plotly_js, time_series
from .report import default_metrics
from .summary import VALUE_KINDS, RunSummary

TEMPLATE = "dashboard.html.j2"
# Telemetry charts: (title, metric patterns tried in order, value kind, y label).
TELEMETRY = (
    ("step time", ("device/step_time*", "*step_time*", "*epoch_seconds*", "*_seconds"), "mean", "seconds"),
    ("fallback ops", ("device/ops/fallback_total", "device/ops/*/fallback"), "final", "op calls on the CPU fallback"),
    ("peak accelerator memory", ("device/memory/max_allocated_bytes",), "max", "bytes"),
)
_THRESHOLD_RE = re.compile(r"^\s*(?P<name>[^=<>]+?)\s*(?P<op>>=|<=|=)\s*(?P<value>[-+0-9.eEinfa]+)\s*$")


@dataclass
class Threshold:
    metric: str
    value: float
    higher_is_better: bool | None  # None: the metric's own direction

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """`val_acc>=0.95` (flag values below), `loss<=0.3` (flag above), `loss=0.3`."""
        m = _THRESHOLD_RE.match(text)
        if not m:
            raise ValueError(f"threshold {text!r}: use METRIC>=VALUE, METRIC<=VALUE or METRIC=VALUE")
        try:
            value = float(m["value"])
        except ValueError:
            raise ValueError(f"threshold {text!r}: {m['value']!r} is not a number") from None
        op = m["op"]
        return cls(m["name"], value, None if op == "=" else op == ">=")


def _history_section(runs_dir: Path) -> dict[str, Any]:
    hist = read_history(runs_dir)
    note = ""
    if not hist:
        report = validate_runs(runs_dir, jobs=1)
        s = report.summary()
        hist = [{"time": report.checked_at, "summary": s, "new_errors": [], "errors": {}}]
        note = ("No validation history yet: this is one validation of now. Run `watch` or "
                "`validate --incremental` to build one.")
    xs = [float(h["time"]) for h in hist]

    def col(key: str) -> list[float]:
        return [float(h.get("summary", {}).get(key, 0) or 0) for h in hist]

    new = [", ".join(h.get("new_errors") or []) or "-" for h in hist]
    chart = time_series("findings per validation pass", xs,
                        {"errors": col("errors"), "warnings": col("warnings"),
                         "notes": col("infos"), "runs with errors": col("runs_with_errors")},
                        y_label="count",
                        colors={"errors": BAD, "warnings": "#f28e2b", "notes": "#9aa5b1",
                                "runs with errors": "#b07aa1"},
                        markers={"runs with errors": [f"new: {n}" for n in new]})
    last = hist[-1]
    return {"chart": chart, "passes": len(hist), "note": note, "last": last.get("summary", {}),
            "last_time": _when(float(last["time"])),
            "new_errors": [(_when(float(h["time"])), h["new_errors"]) for h in hist
                           if h.get("new_errors")][-20:]}


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _points(runs: list[RunSummary], name: str, kind: str) -> tuple[list[dict[str, Any]], bool]:
    up = True
    points = []
    for r in runs:
        m = r.metrics.get(name)
        if m is None or r.started_at is None:
            continue
        up = m.higher_is_better
        points.append({"x": r.started_at, "y": m.value(kind), "label": r.run_id})
    return points, up


def _drift(runs: list[RunSummary], name: str, kind: str, th: Threshold | None,
           title: str = "", y_label: str = "") -> dict[str, Any]:
    points, up = _points(runs, name, kind)
    if th is not None and th.higher_is_better is not None:
        up = th.higher_is_better
    chart = drift_chart(title or f"{kind} {name}", points, None if th is None else th.value, up,
                        y_label=y_label)
    return {"metric": name, "kind": kind, "chart": chart, "count": len(points),
            "threshold": None if th is None else th.value, "higher_is_better": up,
            "flagged": [p["title"] for p in chart.points if p["bad"]]}


def _telemetry(runs: list[RunSummary], thresholds: dict[str, Threshold]) -> list[dict[str, Any]]:
    logged = sorted({n for r in runs for n in r.metrics})
    out = []
    for title, patterns, kind, unit in TELEMETRY:
        name = next((n for p in patterns for n in logged if fnmatch.fnmatchcase(n, p)), None)
        if name is not None:
            out.append(_drift(runs, name, kind, thresholds.get(name),
                              f"{title}: {kind} {name}", unit))
    return out


def build_context(runs_dir: Path, metrics: list[str], thresholds: list[Threshold],
                  value: str, title: str) -> dict[str, Any]:
    with RunIndex(runs_dir) as ix:
        ix.refresh()
        runs = ix.summaries()
        broken = ix.broken()
    logged = {n for r in runs for n in r.metrics}
    by_metric = {t.metric: t for t in thresholds}
    unknown = [m for m in [*metrics, *by_metric] if m not in logged]
    if unknown and runs:
        raise click.UsageError(f"metric(s) not logged by any run: {', '.join(unknown)}")
    timing = [p for _, patterns, _, _ in TELEMETRY for p in patterns]
    chosen = list(metrics) or [m for m in default_metrics(runs, limit=8)
                               if not any(fnmatch.fnmatchcase(m, p) for p in timing)][:4]
    chosen += [m for m in by_metric if m not in chosen and not m.startswith("device/")]
    return {
        "title": title, "runs_dir": str(runs_dir), "generated": _when(time.time()),
        "runs": len(runs), "broken": len(broken), "history": _history_section(runs_dir),
        "drift": [_drift(runs, m, value, by_metric.get(m)) for m in chosen],
        "telemetry": _telemetry(runs, by_metric), "plotly_js": plotly_js(),
    }


def render(context: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("rustorch_tools", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**context)


def charts_in(context: dict[str, Any]) -> list[Chart]:
    return [context["history"]["chart"], *(d["chart"] for d in context["drift"]),
            *(d["chart"] for d in context["telemetry"])]


@click.command("dashboard")
@click.argument("runs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write.")
@click.option("--metric", "metrics", multiple=True, metavar="METRIC",
              help="Metric whose drift across runs to chart (repeatable; default: loss- and "
                   "accuracy-like ones).")
@click.option("--threshold", "threshold_texts", multiple=True, metavar="RULE",
              help="METRIC>=VALUE (flag runs below), METRIC<=VALUE (flag above) or "
                   "METRIC=VALUE (the metric's own direction); also for device/... metrics.")
@click.option("--value", type=click.Choice(VALUE_KINDS), default="final", show_default=True,
              help="Which per-run value the metric drift charts show.")
@click.option("--title", default="rustorch governance dashboard", show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Print {output, charts, runs, validation_passes, flagged} as JSON.")
def dashboard_cmd(runs_dir: Path, output: Path, metrics: tuple[str, ...],
                  threshold_texts: tuple[str, ...], value: str, title: str, as_json: bool) -> None:
    """Write a self-contained HTML dashboard of RUNS_DIR: findings over time (validation
    history), metric drift across runs with thresholds, device telemetry drift.

    Interactive (zoom, hover, legend toggling), offline (plotly.js inline). Exit 0 written,
    1 some run is past a threshold, 2 usage or I/O error.
    """
    try:
        thresholds = [Threshold.parse(t) for t in threshold_texts]
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    try:
        context = build_context(runs_dir, list(metrics), thresholds, value, title)
        atomic_write_bytes(output, render(context).encode("utf-8"))
    except OSError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(2) from e
    flagged = sum(len(d["flagged"]) for d in (*context["drift"], *context["telemetry"]))
    if as_json:
        click.echo(json.dumps({"output": str(output), "charts": len(charts_in(context)),
                               "runs": context["runs"],
                               "validation_passes": context["history"]["passes"],
                               "flagged": flagged}))
        raise SystemExit(1 if flagged else 0)
    click.echo(f"wrote {output}: {len(charts_in(context))} charts, {context['runs']} runs, "
               f"{context['history']['passes']} validation passes, {flagged} values past a "
               "threshold")
    raise SystemExit(1 if flagged else 0)
