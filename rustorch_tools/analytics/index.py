"""The delta index: a SQLite cache of run summaries under `RUNS_DIR/.index/analytics.sqlite`.

Files stay the source of truth. `refresh()` stats `run.json` and `metrics.jsonl` of every
run (size, mtime_ns, inode) and re-summarizes only the runs whose files changed, then
recomputes the deltas of every run whose summary or baseline summary changed. Deleting the
folder is always safe: the next refresh rebuilds it.

Concurrency: refreshes are serialized by a filelock next to the database (a second process
waits, then finds the work done); readers use WAL mode, so they never block on a writer.
An unreadable or foreign database file is moved aside and rebuilt.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import Timeout

from ..errors import RustorchToolsError
from ..store import locks
from ..store.runstore import RunStore
from ..workers import bounded_jobs, worker_pool
from .summary import BrokenRun, RunSummary, summarize_run

DB_NAME = "analytics.sqlite"
LOCK_NAME = "analytics.lock"
# Bump when the tables or the summary rules change: older files are rebuilt.
INDEX_VERSION = 5
LOCK_TIMEOUT_S = 600.0
# Re-reading fewer runs than this stays in-process: starting workers costs more.
PARALLEL_MIN = 64
MAX_JOBS = 8


def default_jobs() -> int:
    """Worker processes for big refreshes: $RUSTORCH_ANALYTICS_JOBS, else the CPU count (max 8)."""
    env = os.environ.get("RUSTORCH_ANALYTICS_JOBS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            print(f"warning: RUSTORCH_ANALYTICS_JOBS={env!r} is not a number; using 1", file=sys.stderr)
            return 1
    return max(1, min(os.cpu_count() or 1, MAX_JOBS))

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    dir_name TEXT NOT NULL,
    sig TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    started_at REAL,
    baseline_id TEXT,
    summary TEXT
);
CREATE TABLE metrics (
    run_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    final REAL, best REAL, min REAL, max REAL, mean REAL,
    final_nan INTEGER NOT NULL,
    PRIMARY KEY (run_id, metric)
);
CREATE TABLE series (
    run_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (run_id, metric)
);
CREATE TABLE deltas (
    run_id TEXT NOT NULL,
    baseline_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    final_abs REAL, final_rel REAL, best_abs REAL, best_rel REAL,
    PRIMARY KEY (run_id, metric)
);
CREATE INDEX runs_by_baseline ON runs (baseline_id);
"""


class IndexLockTimeout(RuntimeError):
    """Another process held the index lock for longer than LOCK_TIMEOUT_S."""


@dataclass
class RefreshStats:
    """What one refresh did."""

    scanned: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0
    rebuilt: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _sig(run_dir: Path) -> str:
    return json.dumps(RunStore.of_run_dir(run_dir).signature(), separators=(",", ":"))


def _real(x: float) -> float | None:
    """SQLite turns NaN into NULL anyway; say so explicitly."""
    return None if x is None or math.isnan(x) else x


def _own_file(path: Path) -> None:
    """Refuse an index file that is a link or has other hard links: SQLite would write
    through it into a file outside RUNS_DIR."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if os.path.islink(path) or st.st_nlink > 1 or not os.path.isfile(path):
        raise OSError(f"{path} is a link or not a plain file; refusing to write through it")


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """A damaged or foreign database file (rebuild it), not a busy or read-only one (report it)."""
    if isinstance(exc, sqlite3.OperationalError):
        return "no such table" in str(exc) or "no such column" in str(exc)
    return True


def _rel(delta: float | None, base: float | None) -> float | None:
    if delta is None or base is None:
        return None
    if base == 0:
        return 0.0 if delta == 0 else None
    return delta / abs(base)


class RunIndex:
    """Open (creating if needed) the index of one RUNS_DIR.

    When `RUNS_DIR/.index` cannot be written (or `in_memory`), the index lives in memory for
    this process (same answers, nothing cached between commands).
    """

    def __init__(self, runs_dir: str | os.PathLike[str], jobs: int | None = None,
                 parallel_min: int = PARALLEL_MIN, in_memory: bool = False) -> None:
        self.runs_dir = Path(runs_dir)
        self.jobs = default_jobs() if jobs is None else bounded_jobs(jobs)
        self.parallel_min = parallel_min
        if not self.runs_dir.is_dir():
            raise FileNotFoundError(f"runs directory not found: {self.runs_dir}")
        self.store = RunStore(self.runs_dir)
        self.index_dir = self.store.index_path
        self.db_path = self.index_dir / DB_NAME
        self.in_memory = in_memory or not self._index_dir_writable()
        self._lock = None if self.in_memory else locks.index_lock(self.index_dir)
        self.conn = self._open()

    def _index_dir_writable(self) -> bool:
        try:
            self.store.index_dir(create=True)  # a link or a file in its place is refused
            for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
                _own_file(self.index_dir / name)
            probe = self.index_dir / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except (OSError, RustorchToolsError) as exc:
            print(f"warning: {self.index_dir} is not usable ({exc}); using an in-memory index",
                  file=sys.stderr)
            return False
        return True

    # -- opening -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.in_memory else str(self.db_path)
        conn = sqlite3.connect(target, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        if not self.in_memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _open(self) -> sqlite3.Connection:
        with self._locked():
            conn = None
            try:
                conn = self._connect()
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != INDEX_VERSION:
                    self._create(conn)
                return conn
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                if self.in_memory or not _is_damage(exc):
                    raise
                self._set_aside(exc)
                conn = self._connect()
                self._create(conn)
                return conn

    def _set_aside(self, exc: Exception) -> None:
        """A damaged cache is moved aside (never deleted: it might help a bug report)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            self.store.set_aside_in_index(f"{DB_NAME}{suffix}", f"broken-{stamp}")
        print(f"warning: index {self.db_path} was unreadable ({exc}); rebuilding it", file=sys.stderr)

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for table in ("runs", "metrics", "series", "deltas"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")
        conn.execute("COMMIT")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock is None:
            yield
            return
        try:
            self._lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout as exc:
            raise IndexLockTimeout(f"index lock {self._lock.lock_file} held for over "
                               f"{LOCK_TIMEOUT_S:.0f} s by another process") from exc
        try:
            yield
        finally:
            self._lock.release()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rebuild(self) -> None:
        """Drop every cached row; the next refresh re-reads all runs."""
        with self._locked():
            self._create(self.conn)

    # -- refresh -------------------------------------------------------------------------
    def refresh(self) -> RefreshStats:
        """Bring the index up to date with the files; returns what changed."""
        t0 = time.perf_counter()
        stats = RefreshStats()
        with self._locked():
            try:
                self._refresh(stats)
            except sqlite3.DatabaseError as exc:
                if self.in_memory or not _is_damage(exc):
                    raise
                self.conn.close()
                self._set_aside(exc)
                self.conn = self._connect()
                self._create(self.conn)
                stats = RefreshStats(rebuilt=True)
                self._refresh(stats)
        stats.seconds = time.perf_counter() - t0
        return stats

    def _refresh(self, stats: RefreshStats) -> None:
        known = {name: sig for name, sig in self.conn.execute("SELECT dir_name, sig FROM runs")}
        present: dict[str, Path] = {}
        changed: list[tuple[Path, str]] = []
        for run_dir in self.store.iter_run_dirs():
            present[run_dir.name] = run_dir
            sig = _sig(run_dir)
            if known.get(run_dir.name) != sig:
                changed.append((run_dir, sig))
        stats.scanned = len(present)
        removed = [name for name in known if name not in present]
        # Summaries are computed before the write transaction so readers are never held up.
        summaries = self._summarize_all([run_dir for run_dir, _ in changed])
        results = [(run_dir, sig, summary) for (run_dir, sig), summary in zip(changed, summaries,
                                                                              strict=True)]
        if not results and not removed:
            return
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            touched: set[str] = set()
            # Run ids are folder names (summary.summarize_run), so one key per folder.
            for name in removed:
                self._delete_run(name)
                touched.add(name)
                stats.removed += 1
            for run_dir, sig, result in results:
                self._delete_run(run_dir.name)
                touched.add(self._store(run_dir, sig, result))
                stats.updated += 1
                stats.unreadable += isinstance(result, BrokenRun)
            self._recompute_deltas(touched)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _summarize_all(self, run_dirs: list[Path]) -> list[RunSummary | BrokenRun]:
        jobs = min(self.jobs, len(run_dirs))
        if jobs < 2 or len(run_dirs) < self.parallel_min:
            return [summarize_run(d) for d in run_dirs]
        # spawn, not fork: the caller may run threads (a logging heartbeat) that fork would copy
        # mid-lock. Chunks keep the pickling overhead small.

        chunk = max(1, len(run_dirs) // (jobs * 4))
        with worker_pool(jobs, spawn=True) as pool:
            return list(pool.map(summarize_run, [str(d) for d in run_dirs], chunksize=chunk))

    def _delete_run(self, run_id: str) -> None:
        for table in ("runs", "metrics", "series", "deltas"):
            self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    def _store(self, run_dir: Path, sig: str, result: RunSummary | BrokenRun) -> str:
        conn = self.conn
        if isinstance(result, BrokenRun):
            conn.execute(
                "INSERT INTO runs (run_id, dir_name, sig, ok, error) VALUES (?, ?, ?, 0, ?)",
                (run_dir.name, run_dir.name, sig, result.error),
            )
            return run_dir.name
        rid = result.run_id
        conn.execute(
            "INSERT INTO runs (run_id, dir_name, sig, ok, started_at, baseline_id, summary) "
            "VALUES (?, ?, ?, 1, ?, ?, ?)",
            (rid, run_dir.name, sig, result.started_at, result.baseline_id,
             json.dumps(result.to_json(), separators=(",", ":"))),
        )
        conn.executemany(
            "INSERT INTO metrics (run_id, metric, final, best, min, max, mean, final_nan) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(rid, m.name, _real(m.final), _real(m.best), _real(m.min), _real(m.max),
              _real(m.mean), int(math.isnan(m.final))) for m in result.metrics.values()],
        )
        conn.executemany(
            "INSERT INTO series (run_id, metric, steps, vals) VALUES (?, ?, ?, ?)",
            [(rid, m.name, m.steps.astype("<i8").tobytes(), m.values.astype("<f8").tobytes())
             for m in result.metrics.values()],
        )
        return rid

    def _recompute_deltas(self, touched: set[str]) -> None:
        """Deltas of runs that changed and of runs whose baseline changed."""
        if not touched:
            return
        conn = self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS touched (run_id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM touched")
        conn.executemany("INSERT OR IGNORE INTO touched VALUES (?)", [(r,) for r in touched])
        affected = [r for (r,) in conn.execute(
            "SELECT run_id FROM runs WHERE ok = 1 AND (run_id IN touched OR baseline_id IN touched)"
        )]
        conn.executemany("DELETE FROM deltas WHERE run_id = ?", [(r,) for r in affected])
        conn.execute("DELETE FROM touched")
        conn.executemany("INSERT OR IGNORE INTO touched VALUES (?)", [(r,) for r in affected])
        rows = conn.execute(
            "SELECT r.run_id, r.baseline_id, c.metric, c.final, b.final, c.best, b.best "
            "FROM runs r JOIN metrics c ON c.run_id = r.run_id "
            "JOIN metrics b ON b.run_id = r.baseline_id AND b.metric = c.metric "
            "WHERE r.run_id IN touched"
        ).fetchall()
        out = []
        for rid, bid, metric, cf, bf, cb, bb in rows:
            fa = None if cf is None or bf is None else cf - bf
            ba = None if cb is None or bb is None else cb - bb
            out.append((rid, bid, metric, fa, _rel(fa, bf), ba, _rel(ba, bb)))
        conn.executemany("INSERT INTO deltas VALUES (?, ?, ?, ?, ?, ?, ?)", out)

    # -- queries -------------------------------------------------------------------------
    def summaries(self, run_ids: Iterable[str] | None = None) -> list[RunSummary]:
        """Summaries of readable runs (all, or the given ids), ordered by start time."""
        sql = "SELECT summary FROM runs WHERE ok = 1"
        args: list[str] = []
        if run_ids is not None:
            args = list(run_ids)
            out = []
            for rid in args:
                row = self.conn.execute(
                    "SELECT summary FROM runs WHERE ok = 1 AND run_id = ?", (rid,)).fetchone()
                if row is not None:
                    out.append(RunSummary.from_json(json.loads(row[0])))
            return out
        sql += " ORDER BY COALESCE(started_at, 0), run_id"
        return [RunSummary.from_json(json.loads(s)) for (s,) in self.conn.execute(sql)]

    def broken(self) -> list[BrokenRun]:
        """Run folders that could not be read, with the reason."""
        return [BrokenRun(rid, str(self.runs_dir / name), err) for rid, name, err in
                self.conn.execute("SELECT run_id, dir_name, error FROM runs WHERE ok = 0 "
                                  "ORDER BY run_id")]

    def run_ids(self) -> set[str]:
        return {r for (r,) in self.conn.execute("SELECT run_id FROM runs WHERE ok = 1")}

    def load_series(self, runs: Iterable[RunSummary], metrics: Iterable[str] | None = None) -> None:
        """Attach the sampled curves (steps, values) to the given summaries, in place."""
        wanted = None if metrics is None else set(metrics)
        for run in runs:
            for rid_metric in self.conn.execute(
                "SELECT metric, steps, vals FROM series WHERE run_id = ?", (run.run_id,)
            ):
                metric, steps, vals = rid_metric
                if (wanted is not None and metric not in wanted) or metric not in run.metrics:
                    continue
                m = run.metrics[metric]
                m.steps = np.frombuffer(steps, dtype="<i8")
                m.values = np.frombuffer(vals, dtype="<f8")

    def deltas(self, run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored deltas of each run against its own baseline (tag `baseline`, else parent)."""
        sql = ("SELECT run_id, baseline_id, metric, final_abs, final_rel, best_abs, best_rel "
               "FROM deltas")
        rows = self.conn.execute(sql + " ORDER BY run_id, metric").fetchall()
        keep = None if run_ids is None else set(run_ids)
        return [
            {"run_id": r, "baseline_id": b, "metric": m, "final_abs": fa, "final_rel": fr,
             "best_abs": ba, "best_rel": br}
            for r, b, m, fa, fr, ba, br in rows if keep is None or r in keep
        ]


def open_index(runs_dir: str | os.PathLike[str], refresh: bool = True) -> RunIndex:
    """A refreshed index of `runs_dir` (the usual entry point)."""
    index = RunIndex(runs_dir)
    if refresh:
        index.refresh()
    return index
