"""Per-run summaries: run.json fields plus one MetricSummary per metric.

Everything is read through `rustorch_tools.store`; a run that cannot be read becomes a
`BrokenRun` (reported by every command, never a traceback).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RustorchToolsError
from ..store import jsonl, layout, runs, schema
from ..store.runstore import RunStore
from .configdiff import config_fingerprint
from .direction import higher_is_better

# Curves kept per metric for charts and "at matching steps" deltas (see _grid_sample).
SERIES_POINTS = 256
_ROW_KEYS = frozenset({"step", "time", "rank"})
_MAX_STEP = 2**63 - 1  # steps are stored as int64


@dataclass
class MetricSummary:
    """Aggregates of one metric over a run. min/max/mean/best skip non-finite values."""

    name: str
    count: int
    final: float
    final_step: int
    first: float
    min: float
    max: float
    mean: float
    best: float
    best_step: int | None
    nonfinite: int
    higher_is_better: bool
    steps: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float64))

    def value(self, which: str) -> float:
        """`final`, `best`, `min`, `max`, `mean` or `first`."""
        if which not in VALUE_KINDS:
            raise ValueError(f"unknown value kind {which!r}; expected one of {', '.join(VALUE_KINDS)}")
        return float(getattr(self, which))

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count, "final": self.final, "final_step": self.final_step,
            "first": self.first, "min": self.min, "max": self.max, "mean": self.mean,
            "best": self.best, "best_step": self.best_step, "nonfinite": self.nonfinite,
            "higher_is_better": self.higher_is_better,
        }

    @classmethod
    def from_json(cls, name: str, obj: dict[str, Any]) -> MetricSummary:
        return cls(name=name, **obj)


VALUE_KINDS = ("final", "best", "min", "max", "mean", "first")


@dataclass
class RunSummary:
    """What analytics needs of one run (no raw rows)."""

    run_id: str
    path: str
    name: str | None
    raw_status: str | None
    heartbeat_at: float | None
    heartbeat_interval_s: float | None
    created_at: float | None
    started_at: float | None
    ended_at: float | None
    config: dict[str, Any]
    params: dict[str, Any]
    seed: Any
    tags: dict[str, Any]
    parent: dict[str, Any] | None
    environment: dict[str, Any]
    error: dict[str, Any] | None
    migrated_from: int | None
    rows: int
    last_step: int | None
    corrupt_lines: int
    incomplete_tail: bool  # last metrics line has no newline yet
    schema_errors: list[str]
    metrics: dict[str, MetricSummary]

    def _doc(self) -> dict[str, Any]:
        return {"status": self.raw_status, "heartbeat_at": self.heartbeat_at,
                "heartbeat_interval_s": self.heartbeat_interval_s}

    @property
    def status(self) -> str | None:
        """As readers should show it: `crashed` for a `running` run with a stale heartbeat
        (computed now, so a cached summary never shows a dead run as running)."""
        if self.raw_status is None:
            return None
        return runs.effective_status(self._doc())

    @property
    def live(self) -> bool:
        return self.raw_status == "running" and not runs.is_stale(self._doc())

    @property
    def parent_id(self) -> str | None:
        return (self.parent or {}).get("run_id")

    @property
    def baseline_id(self) -> str | None:
        """The run this one is measured against: tag `baseline`, else its parent."""
        tagged = (self.tags or {}).get("baseline")
        if isinstance(tagged, str) and tagged and tagged != self.run_id:
            return tagged
        return self.parent_id

    @property
    def settings(self) -> dict[str, Any]:
        """The part of run.json a config diff looks at."""
        return {"config": self.config, "params": self.params, "seed": self.seed}

    @property
    def config_hash(self) -> str:
        return config_fingerprint({"config": self.config, "params": self.params})

    @property
    def problems(self) -> list[str]:
        out = []
        if self.corrupt_lines:
            out.append(f"{self.corrupt_lines} corrupt line(s) in {layout.METRICS} skipped")
        if self.incomplete_tail and not self.live:
            out.append(f"torn last line in {layout.METRICS} skipped")
        if self.schema_errors:
            out.append("run.json does not match its schema: " + "; ".join(self.schema_errors[:3]))
        if self.migrated_from is not None:
            out.append(f"run.json schema_version {self.migrated_from} migrated in memory")
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything but the curves (those live in their own index table)."""
        return {
            "run_id": self.run_id, "path": self.path, "name": self.name,
            "raw_status": self.raw_status, "heartbeat_at": self.heartbeat_at,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "created_at": self.created_at, "started_at": self.started_at,
            "ended_at": self.ended_at, "config": self.config, "params": self.params,
            "seed": self.seed, "tags": self.tags, "parent": self.parent,
            "environment": self.environment, "error": self.error,
            "migrated_from": self.migrated_from, "rows": self.rows, "last_step": self.last_step,
            "corrupt_lines": self.corrupt_lines, "incomplete_tail": self.incomplete_tail,
            "schema_errors": self.schema_errors, "metrics": {name: m.to_json() for name, m in self.metrics.items()},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunSummary:
        obj = dict(obj)
        metrics = {n: MetricSummary.from_json(n, m) for n, m in obj.pop("metrics").items()}
        return cls(metrics=metrics, **obj)


@dataclass
class BrokenRun:
    """A run folder that could not be summarized, and why."""

    run_id: str
    path: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "path": self.path, "error": self.error}


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def summarize_run(run_dir: str | os.PathLike[str]) -> RunSummary | BrokenRun:
    """Read one run through the store and aggregate its metrics.

    A run.json that parses but breaks its schema is still summarized (the problem is
    listed); one that cannot be parsed or is from a newer schema is a BrokenRun.
    """
    path = Path(run_dir)
    try:
        doc, migrated_from = schema.migrate_run(runs.read_run_raw(path))
        schema_errors = schema.validate_document("run", doc)
    except (RustorchToolsError, OSError, ValueError, TypeError, KeyError, AttributeError,
            RecursionError, OverflowError) as exc:
        return BrokenRun(path.name, str(path), f"{type(exc).__name__}: {exc}")
    try:
        return _summarize(path, doc, migrated_from, schema_errors)
    except (OSError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        return BrokenRun(path.name, str(path), f"{type(exc).__name__}: {exc}")


def _dict_or_empty(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _summarize(path: Path, doc: dict[str, Any], migrated_from: int | None,
               schema_errors: list[str]) -> RunSummary:
    series: dict[str, tuple[list[int], list[float]]] = {}
    rows = corrupt = 0
    last_step: int | None = None
    tail = False
    for result in RunStore.of_run_dir(path).scan("metrics"):
        if result.row is None:
            if result.complete:
                corrupt += 1
            else:
                tail = True
            continue
        row = jsonl.restore_nonfinite(result.row)
        step = row.get("step")
        if type(step) is not int or not 0 <= step <= _MAX_STEP:
            corrupt += 1
            continue
        rows += 1
        if last_step is None or step > last_step:
            last_step = step
        for key, value in row.items():
            # Only int/float values are metrics (bool is not); "_" keys are reserved.
            kind = type(value)
            if (kind is not float and kind is not int) or key in _ROW_KEYS or key[:1] == "_" or not key:
                continue
            pair = series.get(key)
            if pair is None:
                pair = series[key] = ([], [])
            pair[0].append(step)
            pair[1].append(value)
    metrics = {name: _metric(name, *series[name]) for name in sorted(series)}
    # The folder name is the id users type (`--runs-dir`); a disagreeing run.json is noted.
    run_id = path.name
    if doc.get("run_id") != run_id:
        schema_errors = [*schema_errors,
                         f"run_id {doc.get('run_id')!r} differs from the folder name {run_id!r}"]
    parent = doc.get("parent") if isinstance(doc.get("parent"), dict) else None
    error = doc.get("error") if isinstance(doc.get("error"), dict) else None
    return RunSummary(
        run_id=run_id, path=str(path), name=_str_or_none(doc.get("name")),
        raw_status=_str_or_none(doc.get("status")), heartbeat_at=_num(doc.get("heartbeat_at")),
        heartbeat_interval_s=_num(doc.get("heartbeat_interval_s")),
        created_at=_num(doc.get("created_at")), started_at=_num(doc.get("started_at")),
        ended_at=_num(doc.get("ended_at")), config=_dict_or_empty(doc.get("config")),
        params=_dict_or_empty(doc.get("params")), seed=doc.get("seed"),
        tags=_dict_or_empty(doc.get("tags")), parent=parent,
        environment=_dict_or_empty(doc.get("environment")), error=error,
        migrated_from=migrated_from, rows=rows, last_step=last_step, corrupt_lines=corrupt,
        incomplete_tail=tail, schema_errors=schema_errors, metrics=metrics,
    )


def _str_or_none(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _metric(name: str, step_list: list[int], value_list: list[float]) -> MetricSummary:
    steps = np.asarray(step_list, dtype=np.int64)
    try:
        vals = np.asarray(value_list, dtype=np.float64)
    except OverflowError:  # a JSON integer beyond float range: it is ±inf as a float
        vals = np.array([_as_float(v) for v in value_list], dtype=np.float64)
    finite = np.isfinite(vals)
    up = higher_is_better(name)
    nan = math.nan
    if finite.any():
        fv = vals[finite]
        vmin, vmax, vmean = float(fv.min()), float(fv.max()), float(fv.mean())
        best_i = int(np.flatnonzero(finite)[np.argmax(fv) if up else np.argmin(fv)])
        best, best_step = float(vals[best_i]), int(steps[best_i])
    else:
        vmin = vmax = vmean = best = nan
        best_step = None
    # Final: the value written last at the largest step (rows are appended in step order
    # per rank; a stable sort keeps the write order inside one step).
    order = np.argsort(steps, kind="stable")
    s_sorted, v_sorted = steps[order], vals[order]
    series_steps, series_vals = _last_per_step(s_sorted, v_sorted)
    g_steps, g_vals = _grid_sample(series_steps, series_vals, SERIES_POINTS)
    return MetricSummary(
        name=name, count=int(vals.size), final=float(v_sorted[-1]), final_step=int(s_sorted[-1]),
        first=float(v_sorted[0]), min=vmin, max=vmax, mean=vmean, best=best,
        best_step=best_step, nonfinite=int((~finite).sum()), higher_is_better=up,
        steps=g_steps, values=g_vals,
    )


def _as_float(v: int | float) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _last_per_step(steps: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One value per step (the last one written), steps ascending."""
    if steps.size == 0:
        return steps, vals
    keep = np.ones(steps.size, dtype=bool)
    keep[:-1] = steps[1:] != steps[:-1]
    return steps[keep], vals[keep]


def _grid_sample(steps: np.ndarray, vals: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~`points` samples on a power-of-two step grid, plus the last step.

    Two runs logged at the same steps keep the same grid steps (a coarser grid is a subset
    of a finer one), so "deltas at matching steps" still find common steps after sampling.
    """
    if steps.size <= points:
        return steps, vals
    span = max(int(steps[-1]), 1)
    stride = 1
    while span // stride >= points:
        stride *= 2
    keep = (steps % stride) == 0
    keep[-1] = True
    kept = int(keep.sum())
    if not points // 4 <= kept <= 2 * points:  # irregular steps: evenly spaced rows instead
        idx = np.unique(np.linspace(0, steps.size - 1, points).astype(np.int64))
        return steps[idx], vals[idx]
    return steps[keep], vals[keep]
