"""The HTML report: curves, comparison table, gate results and a drift view, one file.

Charts are plotly figures (`plots.py`: zoom, hover, legend toggling) in the Jinja2 template
`rustorch_tools/templates/analytics_report.html.j2`, with plotly.js inline: no network, no
external asset; text is escaped by Jinja2's autoescape, chart data by plotly's JSON.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import jinja2

from .gates import Rule, evaluate
from .index import RunIndex
from .plots import PALETTE, drift_chart, line_chart, plotly_js
from .runsource import RunLookupError
from .summary import RunSummary
from .tables import fmt_num, fmt_pct

TEMPLATE = "analytics_report.html.j2"
DEFAULT_MAX_CURVES = 10


@dataclass
class ReportOptions:
    metrics: list[str] | None = None  # curves/table metrics; None = loss/acc-like ones
    max_curves: int = DEFAULT_MAX_CURVES
    baseline: str | None = None
    rules: list[Rule] = field(default_factory=list)
    drift_metric: str | None = None
    drift_threshold: float | None = None
    drift_value: str = "final"
    title: str = "rustorch runs report"


def default_metrics(runs: list[RunSummary], limit: int = 6) -> list[str]:
    """Loss- and accuracy-like metrics first, device telemetry never by default."""
    counts: dict[str, int] = {}
    for r in runs:
        for name in r.metrics:
            if not name.startswith("device/"):
                counts[name] = counts.get(name, 0) + 1
    names = sorted(counts, key=lambda n: (-counts[n], n))
    preferred = [n for n in names if any(k in n.lower() for k in ("loss", "acc"))]
    rest = [n for n in names if n not in preferred]
    return (preferred + rest)[:limit]


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _duration(r: RunSummary) -> str:
    if r.started_at is None or r.ended_at is None:
        return "-"
    s = max(r.ended_at - r.started_at, 0.0)
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def _delta_class(rel: float | None, higher_is_better: bool) -> str:
    if rel is None or not math.isfinite(rel) or rel == 0:
        return ""
    return "better" if (rel > 0) == higher_is_better else "worse"


def _rel(run_v: float, base_v: float) -> float | None:
    if not (math.isfinite(run_v) and math.isfinite(base_v)):
        return None
    if base_v == 0:
        return 0.0 if run_v == 0 else None
    return (run_v - base_v) / abs(base_v)


def build_context(index: RunIndex, opts: ReportOptions) -> dict[str, Any]:
    runs = index.summaries()
    broken = index.broken()
    by_id = {r.run_id: r for r in runs}
    baseline = None
    if opts.baseline is not None:
        baseline = by_id.get(opts.baseline)
        if baseline is None:
            raise RunLookupError(
                f"baseline run {opts.baseline!r} not found (or unreadable) in {index.runs_dir}")
    metrics = opts.metrics or default_metrics(runs)
    logged = {n for r in runs for n in r.metrics}
    unknown = [m for m in [*(opts.metrics or []), *filter(None, [opts.drift_metric])] if m not in logged]
    if unknown and runs:
        raise RunLookupError(f"metric(s) not logged by any run: {', '.join(unknown)}")
    status_counts: dict[str, int] = {}
    for r in runs:
        status_counts[r.status or "unknown"] = status_counts.get(r.status or "unknown", 0) + 1

    # Curves: the most recent runs (plus the baseline), one chart per metric.
    recent = sorted(runs, key=lambda r: (r.started_at or 0.0, r.run_id))[-opts.max_curves:]
    if baseline is not None and baseline not in recent:
        recent = [baseline, *recent[1:]] if len(recent) >= opts.max_curves else [baseline, *recent]
    index.load_series(recent, metrics)
    charts = []
    for name in metrics:
        series = [(r.run_id, r.metrics[name].steps.astype(float), r.metrics[name].values)
                  for r in recent if name in r.metrics]
        if series:
            charts.append(line_chart(name, series))

    # Comparison: against --baseline, else each run against its own baseline (index deltas).
    stored = {(d["run_id"], d["metric"]): d for d in index.deltas()}
    rows = []
    for r in runs:
        cells = []
        ref = baseline if baseline is not None else by_id.get(r.baseline_id or "")
        for name in metrics:
            m = r.metrics.get(name)
            if m is None:
                cells.append({"value": "-", "delta": "", "cls": ""})
                continue
            if baseline is not None:
                bm = baseline.metrics.get(name)
                rel = None if bm is None or r is baseline else _rel(m.final, bm.final)
            else:
                d = stored.get((r.run_id, name))
                rel = None if d is None else d["final_rel"]
            cells.append({"value": fmt_num(m.final), "delta": fmt_pct(rel) if rel is not None else "",
                          "cls": _delta_class(rel, m.higher_is_better)})
        rows.append({"run": r, "ref": ref.run_id if ref is not None and ref is not r else "",
                     "cells": cells, "started": _when(r.started_at), "duration": _duration(r)})

    # Gates: every other run against the baseline.
    gate_rows = []
    if baseline is not None and opts.rules:
        for r in runs:
            if r is baseline:
                continue
            gate_rows.append(evaluate(opts.rules, r, baseline))
        gate_rows.sort(key=lambda g: g["passed"])  # failures first (stable: start order kept)
    gates_failed = sum(not g["passed"] for g in gate_rows)

    drift = _drift(runs, metrics, opts)
    return {
        "title": opts.title, "generated": _when(time.time()), "runs_dir": str(index.runs_dir),
        "runs": runs, "broken": broken, "status_counts": sorted(status_counts.items()),
        "metrics": metrics, "charts": charts, "rows": rows, "baseline": baseline,
        "rules": [r.text for r in opts.rules], "gates": gate_rows, "gates_failed": gates_failed,
        "drift": drift, "palette": PALETTE, "plotly_js": plotly_js(),
        "problems": [(r.run_id, p) for r in runs for p in r.problems],
    }


def _drift(runs: list[RunSummary], metrics: list[str], opts: ReportOptions) -> dict[str, Any] | None:
    name = opts.drift_metric or next((m for m in metrics if "acc" in m.lower()),
                                     metrics[0] if metrics else None)
    if name is None:
        return None
    points = []
    up = True
    for r in runs:
        m = r.metrics.get(name)
        if m is None or r.started_at is None:
            continue
        up = m.higher_is_better
        points.append({"x": r.started_at, "y": m.value(opts.drift_value), "label": r.run_id})
    title = f"{opts.drift_value} {name}"
    chart = drift_chart(title, points, opts.drift_threshold, up)
    flagged = [p for p in chart.points if p["bad"]]
    return {"metric": name, "value": opts.drift_value, "threshold": opts.drift_threshold,
            "higher_is_better": up, "chart": chart, "count": len(points),
            "flagged": [p["title"] for p in flagged]}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rustorch_tools", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    env.filters["pct"] = lambda v: fmt_pct(None if v is None else v / 100.0)
    return env


def render(context: dict[str, Any]) -> str:
    return _environment().get_template(TEMPLATE).render(**context)


def render_report(index: RunIndex, opts: ReportOptions) -> tuple[str, int]:
    """The whole report as one HTML string, and how many runs failed the gate."""
    context = build_context(index, opts)
    return render(context), context["gates_failed"]

