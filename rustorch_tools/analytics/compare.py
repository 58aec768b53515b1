"""Compare runs: config diff, metric deltas (final, best, at matching steps), environment diff.

Relative changes are fractions of the reference value's magnitude: `(run - ref) / |ref|`
(`null` when the reference is 0 and the run is not, or a value is non-finite).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..store.layout import printable
from .configdiff import diff_flat, flatten
from .summary import MetricSummary, RunSummary
from .tables import fmt_delta, fmt_num, fmt_pct, fmt_value, markdown_table, text_table

# Environment keys that differ between any two processes and say nothing about a run.
ENV_IGNORED = frozenset({"pid"})
AT_STEP_POINTS = 5


def delta(ref: float, run: float) -> tuple[float | None, float | None]:
    """(absolute, relative) change from `ref` to `run`; None where undefined."""
    if not (math.isfinite(ref) and math.isfinite(run)):
        return None, None
    d = run - ref
    if ref == 0:
        return d, (0.0 if d == 0 else None)
    return d, d / abs(ref)


def _pair(ref: float, run: float) -> dict[str, Any]:
    d, rel = delta(ref, run)
    return {"reference": ref, "run": run, "delta": d, "rel": rel}


def _common_steps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps in both sorted unique arrays, with their indices in each (fast path: equal grids)."""
    if a.size == b.size and np.array_equal(a, b):
        idx = np.arange(a.size)
        return a, idx, idx
    if a.size == 0 or b.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pos = np.minimum(np.searchsorted(a, b), a.size - 1)
    ib = np.flatnonzero(a[pos] == b)
    return b[ib], pos[ib], ib


def _picks(n: int, k: int) -> list[int]:
    """`k` evenly spread indices of `n`, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def at_matching_steps(ref: MetricSummary, run: MetricSummary, points: int = AT_STEP_POINTS) -> dict[str, Any]:
    """Deltas at steps both curves hold (sampled curves: see summary._grid_sample)."""
    common, ia, ib = _common_steps(ref.steps, run.steps)
    out: dict[str, Any] = {"common_steps": int(common.size), "points": [],
                           "max_abs_delta": None, "max_abs_delta_step": None}
    if common.size == 0:
        return out
    va, vb = ref.values[ia], run.values[ib]
    diffs = vb - va
    finite = np.isfinite(diffs)
    if finite.all():
        i = int(np.argmax(np.abs(diffs)))
    elif finite.any():
        i = int(np.flatnonzero(finite)[np.argmax(np.abs(diffs[finite]))])
    else:
        i = -1
    if i >= 0:
        out["max_abs_delta"] = float(diffs[i])
        out["max_abs_delta_step"] = int(common[i])
    out["points"] = [{"step": int(common[i]), **_pair(float(va[i]), float(vb[i]))}
                     for i in _picks(common.size, points)]
    return out


class _Reference:
    """The reference run's flattened settings and environment, computed once."""

    def __init__(self, run: RunSummary) -> None:
        self.run = run
        self.settings = flatten(run.settings)
        self.environment = flatten({k: v for k, v in run.environment.items() if k not in ENV_IGNORED})


def compare_pair(ref: RunSummary | _Reference, run: RunSummary,
                 metrics: Iterable[str] | None = None, with_steps: bool = True) -> dict[str, Any]:
    """One run against a reference run."""
    cached = ref if isinstance(ref, _Reference) else _Reference(ref)
    ref = cached.run
    wanted = None if metrics is None else set(metrics)
    names = sorted(ref.metrics.keys() & run.metrics.keys())
    if wanted is not None:
        names = [n for n in names if n in wanted]
    metric_rows = []
    for name in names:
        a, b = ref.metrics[name], run.metrics[name]
        row: dict[str, Any] = {
            "metric": name, "higher_is_better": a.higher_is_better,
            "final": _pair(a.final, b.final), "best": _pair(a.best, b.best),
            "min": _pair(a.min, b.min), "max": _pair(a.max, b.max), "mean": _pair(a.mean, b.mean),
            "final_step": {"reference": a.final_step, "run": b.final_step},
        }
        if with_steps:
            row["at_steps"] = at_matching_steps(a, b)
        metric_rows.append(row)

    def only(x: RunSummary, y: RunSummary) -> list[str]:
        keys = sorted(x.metrics.keys() - y.metrics.keys())
        return keys if wanted is None else [k for k in keys if k in wanted]

    env_b = {k: v for k, v in run.environment.items() if k not in ENV_IGNORED}
    return {
        "reference": ref.run_id,
        "run": run.run_id,
        "config_diff": [e.to_json() for e in diff_flat(cached.settings, flatten(run.settings))],
        "environment_diff": [e.to_json() for e in diff_flat(cached.environment, flatten(env_b))],
        "metrics": metric_rows,
        "only_in_reference": only(ref, run),
        "only_in_run": only(run, ref),
    }


def run_brief(run: RunSummary) -> dict[str, Any]:
    return {"run_id": run.run_id, "name": run.name, "status": run.status, "path": run.path,
            "started_at": run.started_at, "parent": run.parent_id, "problems": run.problems}


def compare(reference: RunSummary, others: list[RunSummary], metrics: Iterable[str] | None = None,
            with_steps: bool = True) -> dict[str, Any]:
    """The `compare --json` document (documented in docs/analytics.md)."""
    metric_list = None if metrics is None else list(metrics)
    cached = _Reference(reference)
    return {
        "reference": run_brief(reference),
        "runs": [run_brief(r) for r in others],
        "comparisons": [compare_pair(cached, r, metric_list, with_steps) for r in others],
    }


# -- rendering ----------------------------------------------------------------------------
def _metric_table_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for comp in doc["comparisons"]:
        for m in comp["metrics"]:
            f, b = m["final"], m["best"]
            steps = m.get("at_steps") or {}
            last = (steps.get("points") or [None])[-1]
            rows.append([
                comp["run"], m["metric"], fmt_num(f["reference"]), fmt_num(f["run"]),
                fmt_delta(f["delta"]), fmt_pct(f["rel"]), fmt_num(b["run"]), fmt_pct(b["rel"]),
                f"{fmt_pct(last['rel'])} @{last['step']}" if last else "-",
                fmt_delta(steps.get("max_abs_delta")) if steps else "-",
            ])
    return rows


_METRIC_HEADERS = ["run", "metric", "ref final", "final", "Δ final", "Δ% final", "best",
                   "Δ% best", "Δ% @last common step", "max |Δ| at steps"]


def _diff_rows(doc: dict[str, Any], key: str) -> list[list[str]]:
    return [[c["run"], e["key"], e["change"], fmt_value(e["a"]), fmt_value(e["b"])]
            for c in doc["comparisons"] for e in c[key]]


def render_text(doc: dict[str, Any], markdown: bool = False) -> str:
    table = markdown_table if markdown else text_table
    ref = doc["reference"]["run_id"]
    h = "## " if markdown else ""
    parts = [f"{h}Compared against {ref}" + ("" if markdown else "")]
    parts.append(f"\n{h}Metrics\n")
    parts.append(table(_METRIC_HEADERS, _metric_table_rows(doc)) if doc["comparisons"] else "(no runs)")
    only = [f"{c['run']}: only in reference: {', '.join(c['only_in_reference'])}"
            for c in doc["comparisons"] if c["only_in_reference"]]
    only += [f"{c['run']}: only in run: {', '.join(c['only_in_run'])}"
             for c in doc["comparisons"] if c["only_in_run"]]
    if only:
        parts.append("\n".join(printable(x) for x in only))
    for key, title in (("config_diff", "Config diff"), ("environment_diff", "Environment diff")):
        rows = _diff_rows(doc, key)
        parts.append(f"\n{h}{title}\n")
        parts.append(table(["run", "key", "change", ref, "run value"], rows) if rows else "(none)")
    problems = [(r["run_id"], p) for r in [doc["reference"], *doc["runs"]] for p in r["problems"]]
    problems += [(b["run_id"], b["error"]) for b in doc.get("broken", [])]
    if problems:
        parts.append(f"\n{h}Problems\n")
        parts.append(table(["run", "problem"], [[a, b] for a, b in problems]))
    return "\n".join(parts) + "\n"
