"""Interactive charts for the HTML report and the dashboard, drawn by plotly.

Each chart is a plotly figure rendered as a `<div>` plus a small `Plotly.newPlot` script;
the page embeds plotly.js once, inline (`plotly_js()`), so the file works offline and loads
nothing from the network. Zoom, pan, hover and legend toggling come from plotly. Data values
reach the page only as JSON inside the scripts (plotly escapes `<`, `>` and `/`).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#7f7f7f", "#1b9e77", "#d95f02")
BAD, GOOD, TREND = "#d62728", "#4e79a7", "#9aa5b1"
WIDTH, HEIGHT = 640, 340
CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}
_ids = itertools.count()


@functools.cache
def plotly_js() -> str:
    """plotly.js (minified) for one inline `<script>` per page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@dataclass
class Chart:
    """One rendered chart and what the page says about it."""

    title: str
    html: str = ""
    legend: list[dict[str, str]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)  # drift points, with `bad`
    empty: bool = False
    log_y: bool = False


def _layout(title: str, x_title: str, y_title: str, log_y: bool = False) -> dict[str, Any]:
    return {"title": {"text": title + (" (log scale)" if log_y else ""), "font": {"size": 14}},
            "template": "plotly_white", "width": WIDTH, "height": HEIGHT,
            "margin": {"l": 60, "r": 16, "t": 40, "b": 48},
            "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title},
                                                             "type": "log" if log_y else "linear"},
            "legend": {"font": {"size": 11}}, "hovermode": "closest"}


def render(fig: go.Figure, chart: Chart) -> Chart:
    chart.html = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=CONFIG,
                             div_id=f"chart-{next(_ids)}", validate=False)
    return chart


def _clean(values: np.ndarray) -> list[float | None]:
    """NaN/inf become gaps (None) instead of wrong lines."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def line_chart(title: str, series: Sequence[tuple[str, np.ndarray, np.ndarray]],
               x_label: str = "step", y_label: str = "") -> Chart:
    """One line per (label, x, y) series; a log y axis when positive values span > 100x."""
    chart = Chart(title=title)
    finite = [np.asarray(s[2], dtype=np.float64) for s in series]
    finite = [v[np.isfinite(v)] for v in finite]
    ys = np.concatenate(finite) if finite else np.zeros(0)
    if ys.size == 0:
        chart.empty = True
        fig = go.Figure(layout=_layout(title, x_label, y_label or title))
        fig.add_annotation(text="no finite values", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return render(fig, chart)
    lo, hi = float(ys.min()), float(ys.max())
    chart.log_y = lo > 0 and hi / lo > 100
    fig = go.Figure(layout=_layout(title, x_label, y_label or title, chart.log_y))
    for i, (label, xs, vals) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        chart.legend.append({"label": label, "color": color})
        fig.add_trace(go.Scatter(x=_clean(xs), y=_clean(vals), name=label, mode="lines",
                                 line={"color": color, "width": 1.6}, connectgaps=False))
    return render(fig, chart)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def is_past(value: float, threshold: float | None, higher_is_better: bool) -> bool:
    if threshold is None:
        return False
    return value < threshold if higher_is_better else value > threshold


def drift_chart(title: str, points: Sequence[dict[str, Any]], threshold: float | None,
                higher_is_better: bool, y_label: str = "") -> Chart:
    """Per-run values over run start time (`x` unix seconds, `y`, `label`); points past the
    threshold are drawn red and listed in `chart.points` with `bad`."""
    chart = Chart(title=title)
    fig = go.Figure(layout=_layout(title, "run start (UTC)", y_label or title))
    good = sorted((p for p in points if math.isfinite(p["y"]) and math.isfinite(p["x"])),
                  key=lambda p: p["x"])
    if not good:
        chart.empty = True
        fig.add_annotation(text="no finite values", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return render(fig, chart)
    xs = [_when(p["x"]) for p in good]
    bad = [is_past(p["y"], threshold, higher_is_better) for p in good]
    chart.points = [{"bad": b, "title": f"{p['label']}: {p['y']:.6g}", "label": p["label"],
                     "y": p["y"]} for p, b in zip(good, bad, strict=True)]
    fig.add_trace(go.Scatter(x=xs, y=[p["y"] for p in good], name="trend", mode="lines",
                             line={"color": TREND, "width": 1.2}, hoverinfo="skip"))
    for flag, name, color in ((False, "within threshold" if threshold is not None else "runs",
                               GOOD), (True, "past threshold", BAD)):
        sel = [i for i, b in enumerate(bad) if b == flag]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=[xs[i] for i in sel], y=[good[i]["y"] for i in sel], name=name, mode="markers",
            marker={"color": color, "size": 9 if flag else 7, "line": {"color": "#fff", "width": 1}},
            text=[good[i]["label"] for i in sel],
            hovertemplate="%{text}<br>%{x}<br>%{y:.6g}<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line={"color": BAD, "dash": "dash", "width": 1.5},
                      annotation_text=f"threshold {threshold:g}", annotation_position="bottom left")
    return render(fig, chart)


def time_series(title: str, xs: Sequence[float], series: dict[str, Sequence[float]],
                y_label: str = "", colors: dict[str, str] | None = None,
                markers: dict[str, list[str]] | None = None) -> Chart:
    """Several counts over wall-clock time (unix seconds), e.g. findings per validation pass;
    `markers` optionally labels the passes (hover text) of each series."""
    chart = Chart(title=title)
    fig = go.Figure(layout=_layout(title, "time (UTC)", y_label))
    when = [_when(x) for x in xs]
    for i, (name, ys) in enumerate(series.items()):
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        chart.legend.append({"label": name, "color": color})
        fig.add_trace(go.Scatter(x=when, y=list(ys), name=name, mode="lines+markers",
                                 line={"color": color, "width": 1.6, "shape": "hv"},
                                 text=(markers or {}).get(name),
                                 hovertemplate="%{x}<br>%{y}<br>%{text}<extra>" + name
                                 + "</extra>" if markers and name in markers else None))
    if not xs:
        chart.empty = True
    return render(fig, chart)
