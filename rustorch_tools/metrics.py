"""`read_metrics(run)`: a run's metric rows as columns.

    cols = rustorch_tools.read_metrics("runs/20260101-000000-mnist-1a2b3c4d")
    cols["step"], cols["loss"]            # numpy arrays, NaN where a row lacks the metric

With pandas installed (and `as_pandas` not False) the result is a DataFrame with the same
columns. Rows are read through the store: corrupt or torn lines are skipped (`validate`
reports them), `_rewind` markers are skipped, non-finite values come back as floats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from .store.layout import printable
from .store.runstore import RunFiles, RunStore

_ROW_KEYS = ("step", "time", "rank")


def _files(run: Any) -> RunFiles:
    files = getattr(run, "files", None)
    if isinstance(files, RunFiles):
        return files
    if isinstance(run, RunFiles):
        return run
    if isinstance(run, str | os.PathLike):
        files = RunStore.of_run_dir(run)
        if not files.exists():
            from .errors import RunNotFoundError

            raise RunNotFoundError(f"no run at {printable(os.fspath(run))} (no run.json)")
        return files
    raise TypeError(f"read_metrics: expected a Run or a run folder, got {type(run).__name__}")


def read_metrics(run: Any, metrics: Iterable[str] | None = None,
                 as_pandas: bool | None = None) -> Any:
    """Columns `step`, `time`, (`rank` when any row has one) and one per metric.

    `run`: a Run, or the path of a run folder. `metrics`: only these names (default all).
    Returns a dict of numpy arrays (int64 step/rank, float64 others, NaN where a row lacks a
    metric), or a pandas DataFrame when pandas is importable and `as_pandas` is not False.
    """
    wanted = None if metrics is None else set(metrics)
    steps: list[int] = []
    times: list[float] = []
    ranks: list[int] = []
    any_rank = False
    columns: dict[str, list[float]] = {}
    n = 0
    for row in _files(run).iter_metrics():
        if "_rewind" in row:
            continue
        step = row.get("step")
        if type(step) is not int:
            continue
        for key, value in row.items():
            if key in _ROW_KEYS or key[:1] == "_" or (wanted is not None and key not in wanted):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            col = columns.get(key)
            if col is None:
                col = columns[key] = [np.nan] * n
            col.append(float(value))
        steps.append(step)
        t = row.get("time")
        times.append(float(t) if isinstance(t, int | float) else np.nan)
        rank = row.get("rank")
        any_rank |= rank is not None
        ranks.append(rank if type(rank) is int else -1)
        n += 1
        for col in columns.values():
            if len(col) < n:
                col.append(np.nan)
    out: dict[str, np.ndarray] = {"step": np.asarray(steps, dtype=np.int64),
                                  "time": np.asarray(times, dtype=np.float64)}
    if any_rank:
        out["rank"] = np.asarray(ranks, dtype=np.int64)
    for name in sorted(columns):
        out[name] = np.asarray(columns[name], dtype=np.float64)
    if as_pandas is False:
        return out
    try:
        import pandas as pd
    except ImportError:
        if as_pandas:
            raise
        return out
    return pd.DataFrame(out)


__all__ = ["read_metrics"]
