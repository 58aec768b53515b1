"""Chart geometry for the HTML report: scales, ticks and SVG paths (the template draws them).

No plotting library: values are mapped to pixel coordinates here and the Jinja2 template
emits `<svg>` elements, so the report is one self-contained file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#7f7f7f", "#1b9e77", "#d95f02")
WIDTH, HEIGHT = 600, 300
MARGIN = {"left": 64, "right": 16, "top": 28, "bottom": 44}


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


@dataclass
class Scale:
    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __call__(self, v: float) -> float:
        lo, hi, x = self.lo, self.hi, v
        if self.log:
            lo, hi, x = math.log10(lo), math.log10(hi), math.log10(max(v, self.lo))
        if hi == lo:
            return (self.p0 + self.p1) / 2
        return self.p0 + (x - lo) / (hi - lo) * (self.p1 - self.p0)

    def ticks(self) -> list[float]:
        if not self.log:
            return nice_ticks(self.lo, self.hi)
        out = [10.0 ** k for k in range(math.floor(math.log10(self.lo)),
                                        math.ceil(math.log10(self.hi)) + 1)]
        return [t for t in out if self.lo <= t <= self.hi] or [self.lo, self.hi]


def _padded(lo: float, hi: float, log: bool) -> tuple[float, float]:
    if log:
        return lo / 1.15, hi * 1.15
    if hi == lo:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


@dataclass
class Chart:
    """Everything the template needs to draw one chart."""

    title: str
    x_label: str
    y_label: str
    width: int = WIDTH
    height: int = HEIGHT
    paths: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    x_ticks: list[dict[str, Any]] = field(default_factory=list)
    y_ticks: list[dict[str, Any]] = field(default_factory=list)
    hline: dict[str, Any] | None = None
    legend: list[dict[str, str]] = field(default_factory=list)
    empty: bool = False
    log_y: bool = False
    plot: dict[str, float] = field(default_factory=dict)


def _frame(chart: Chart) -> tuple[float, float, float, float]:
    x0, x1 = MARGIN["left"], chart.width - MARGIN["right"]
    y0, y1 = chart.height - MARGIN["bottom"], MARGIN["top"]
    chart.plot = {"x": x0, "y": y1, "w": x1 - x0, "h": y0 - y1, "x1": x1, "y0": y0}
    return x0, x1, y0, y1


def _segments(xs: np.ndarray, ys: np.ndarray) -> list[np.ndarray]:
    """Split at non-finite values so a NaN leaves a gap instead of a wrong line."""
    ok = np.isfinite(ys) & np.isfinite(xs)
    out, start = [], None
    for i, good in enumerate(ok):
        if good and start is None:
            start = i
        elif not good and start is not None:
            out.append(np.arange(start, i))
            start = None
    if start is not None:
        out.append(np.arange(start, len(ok)))
    return out


def line_chart(title: str, series: Sequence[tuple[str, np.ndarray, np.ndarray]], x_label: str = "step",
               y_label: str = "") -> Chart:
    """One line per (label, x, y) series, colors from PALETTE in order."""
    chart = Chart(title=title, x_label=x_label, y_label=y_label or title)
    x0, x1, y0, y1 = _frame(chart)
    finite_x = [s[1][np.isfinite(s[2])] for s in series]
    finite_y = [s[2][np.isfinite(s[2])] for s in series]
    xs_all = np.concatenate(finite_x) if finite_x else np.zeros(0)
    ys_all = np.concatenate(finite_y) if finite_y else np.zeros(0)
    if ys_all.size == 0:
        chart.empty = True
        return chart
    ylo, yhi = float(ys_all.min()), float(ys_all.max())
    log = ylo > 0 and yhi / ylo > 100
    chart.log_y = log
    sx = Scale(*_padded(float(xs_all.min()), float(xs_all.max()), False), x0, x1)
    sy = Scale(*_padded(ylo, yhi, log), y0, y1, log)
    _axes(chart, sx, sy, fmt_tick)
    for i, (label, xs, ys) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        chart.legend.append({"label": label, "color": color})
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        for idx in _segments(xs, ys):
            pts = " ".join(f"{sx(float(xs[j])):.1f},{sy(float(ys[j])):.1f}" for j in idx)
            chart.paths.append({"points": pts, "color": color, "label": label,
                                "single": len(idx) == 1,
                                "cx": f"{sx(float(xs[idx[0]])):.1f}",
                                "cy": f"{sy(float(ys[idx[0]])):.1f}"})
    return chart


def _axes(chart: Chart, sx: Scale, sy: Scale, fmt_x: Any) -> None:
    chart.x_ticks = [{"pos": f"{sx(t):.1f}", "label": fmt_x(t)} for t in sx.ticks()]
    chart.y_ticks = [{"pos": f"{sy(t):.1f}", "label": fmt_tick(t)} for t in sy.ticks()]


def _time_ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    hour, day = 3600, 86400
    for step in (60, 120, 300, 600, 900, 1800, hour, 2 * hour, 3 * hour, 6 * hour, 12 * hour, day,
                 2 * day, 7 * day, 14 * day, 30 * day, 91 * day, 365 * day):
        if span / step <= 6:
            break
    first = math.ceil(lo / step) * step
    return [float(t) for t in np.arange(first, hi + 1e-9, step)] or [lo]


def _fmt_time(t: float, span: float) -> str:
    fmt = "%H:%M" if span < 86400 else ("%m-%d %H:%M" if span < 7 * 86400 else "%Y-%m-%d")
    return time.strftime(fmt, time.gmtime(t))


def drift_chart(title: str, points: Sequence[dict[str, Any]], threshold: float | None,
                higher_is_better: bool) -> Chart:
    """End-of-run values over start times; points past the threshold are flagged.

    `points`: dicts with `x` (unix seconds), `y` (value), `label` (run id).
    """
    chart = Chart(title=title, x_label="run start (UTC)", y_label=title)
    x0, x1, y0, y1 = _frame(chart)
    good = [p for p in points if math.isfinite(p["y"]) and math.isfinite(p["x"])]
    if not good:
        chart.empty = True
        return chart
    xs = [p["x"] for p in good]
    ys = [p["y"] for p in good] + ([threshold] if threshold is not None else [])
    sx = Scale(*_padded(min(xs), max(xs), False), x0, x1)
    sy = Scale(*_padded(min(ys), max(ys), False), y0, y1)
    span = sx.hi - sx.lo
    chart.x_ticks = [{"pos": f"{sx(t):.1f}", "label": _fmt_time(t, span)}
                     for t in _time_ticks(sx.lo, sx.hi) if sx.lo <= t <= sx.hi]
    chart.y_ticks = [{"pos": f"{sy(t):.1f}", "label": fmt_tick(t)} for t in sy.ticks()]
    ordered = sorted(good, key=lambda p: p["x"])
    chart.paths.append({"points": " ".join(f"{sx(p['x']):.1f},{sy(p['y']):.1f}" for p in ordered),
                        "color": "#9aa5b1", "label": "trend", "single": False, "cx": "0", "cy": "0"})
    for p in ordered:
        bad = threshold is not None and (p["y"] < threshold if higher_is_better else p["y"] > threshold)
        chart.points.append({"cx": f"{sx(p['x']):.1f}", "cy": f"{sy(p['y']):.1f}",
                             "color": "#d62728" if bad else "#4e79a7", "bad": bad,
                             "title": f"{p['label']}: {p['y']:.6g}"})
    if threshold is not None:
        chart.hline = {"y": f"{sy(threshold):.1f}", "label": f"threshold {threshold:g}"}
    return chart
