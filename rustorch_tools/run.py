"""The logging API: `start_run` / `attach_run` return a `Run` that writes one run directory.

    with rustorch_tools.start_run(root="runs", name="mnist", config=cfg) as run:
        run.log_metrics({"loss": loss}, step=i)

Metric rows are buffered and appended (one locked write per flush) every `flush_every` rows,
every `flush_interval_s` seconds (background thread) and at exit. The same thread refreshes
the heartbeat and the summary in run.json. Several processes may log into one run (DDP ranks:
`start_run(..., run_id=existing, rank=r)` or `attach_run`); rows never interleave.
"""

from __future__ import annotations

import atexit
import math
import numbers
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import environment
from .errors import (
    ArtifactExistsError,
    InvalidNameError,
    NotSerializableError,
    RunNotFoundError,
    RunStateError,
    RustorchToolsError,
)
from .jsonable import to_json_object
from .store import jsonl, layout, runs, schema
from .store.runstore import RunFiles, RunStore

DEFAULT_FLUSH_EVERY = 1000
DEFAULT_FLUSH_INTERVAL_S = 5.0
DEFAULT_HEARTBEAT_INTERVAL_S = schema.DEFAULT_HEARTBEAT_INTERVAL_S
RELATIONS = ("resume", "fork", "finetune")
_PLAIN_NUMBERS = frozenset((int, float))


class NonFiniteMetricWarning(UserWarning):
    """A metric value was NaN or ±inf; it is stored as a string and flagged in `_nonfinite`."""


def _number(name: str, value: Any) -> int | float:
    kind = type(value)
    if kind is float or kind is int:
        return value
    if kind is bool:
        return int(value)
    item = getattr(value, "item", None)  # tensors and numpy scalars
    if callable(item) and not isinstance(value, str | bytes):
        numel = getattr(value, "numel", None)
        size = numel() if callable(numel) else getattr(value, "size", 1)
        if size != 1:
            raise TypeError(f"metric {name!r}: expected a scalar, got a value with {size} elements")
        value = item()
        if type(value) is bool:
            return int(value)
        if isinstance(value, int | float):
            return value
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"metric {name!r}: value {value!r:.60} of type {type(value).__name__} is not a real number")


def _summary_value(value: int | float) -> int | float | str:
    if isinstance(value, float) and not math.isfinite(value):
        return jsonl.nonfinite_text(value)
    return value


def _new_run_doc(
    run_id: str,
    name: str,
    config: dict[str, Any],
    params: dict[str, Any],
    seed: int | None,
    tags: dict[str, str],
    parent: dict[str, Any] | None,
    heartbeat_interval_s: float,
) -> dict[str, Any]:
    now = time.time()
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "run_id": run_id,
        "name": name,
        "status": "running",
        "created_at": now,
        "started_at": now,
        "ended_at": None,
        "heartbeat_at": now,
        "heartbeat_interval_s": heartbeat_interval_s,
        "config": config,
        "params": params,
        "seed": seed,
        "tags": tags,
        "parent": parent,
        "environment": environment.capture(),
        "writer": runs.writer_identity(),
        "error": None,
        "summary": {},
    }


def _tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, list | tuple | set | frozenset):
        tags = {t: "" for t in tags}
    if not isinstance(tags, Mapping):
        raise NotSerializableError(f"tags must be a mapping or a list of strings, got {type(tags).__name__}")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise NotSerializableError(f"tag name {key!r} must be a non-empty string")
        if not isinstance(value, str | int | float | bool):
            raise NotSerializableError(f"tag {key!r}: value {value!r:.60} must be a string or number")
        out[key] = str(value)
    return out


class Run:
    """One open run (one process's, or one rank's, view of a run directory).

    Create with `start_run` / `attach_run`; close with `finish()` or a `with` block.
    With DDP ranks, run.json's `ranks` map records each writer's state (the rank, or "main"
    for a process without one that was writing when the first rank joined); the run becomes
    `finished` when the last running entry finishes cleanly, and `failed` as soon as any
    writer fails. A single process without ranks has no map.
    """

    def __init__(
        self,
        root: Path,
        run_id: str,
        rank: int | None,
        flush_every: int,
        flush_interval_s: float,
        heartbeat_interval_s: float,
    ) -> None:
        self.root = root
        self.run_id = run_id
        self.files: RunFiles = RunStore(root).run(run_id)
        self.dir = self.files.dir
        self.rank = rank
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._buf: list[bytes] = []  # encoded lines
        self._buf_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._last_step: int | None = None
        self._summary: dict[str, int | float] = {}
        self._known_names: set[str] = set()
        self._row_head: dict[str, int] = {} if rank is None else {"rank": rank}
        self._encoder = jsonl.NumberRowEncoder(self._row_head)
        self._warned_nonfinite: set[str] = set()
        self._closed = False
        self._pid = os.getpid()
        self._bg_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._background, name=f"rustorch-run-{run_id}", daemon=True)
        self._thread.start()
        atexit.register(self._atexit)

    # -- metrics ---------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer one row `{step, time, [rank], name: value, ...}`.

        `step` defaults to one more than the last step this Run logged (0 first); steps must
        not decrease. Values are real numbers (Python, numpy or 1-element tensors); NaN/±inf
        are kept as strings, listed in `_nonfinite`, and warned about once per name.
        """
        if self._closed or self._bg_error is not None:
            self._check_open()
        if type(metrics) is not dict:
            if not isinstance(metrics, Mapping):
                raise TypeError(f"metrics must be a mapping of name -> value, got {type(metrics).__name__}")
            metrics = dict(metrics)
        if not metrics:
            raise ValueError("log_metrics needs at least one metric")
        last = self._last_step
        if step is None:
            step = 0 if last is None else last + 1
        elif type(step) is not int:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise TypeError(f"step must be an int, got {step!r}")
            step = int(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if last is not None and step < last:
            raise ValueError(
                f"step {step} is smaller than the last step {last} logged by this run; "
                "steps must not decrease"
            )
        known = self._known_names
        if not known.issuperset(metrics):
            for name in metrics:
                if name not in known:
                    layout.validate_metric_name(name)
                    known.add(name)
        values = metrics.values()
        # Fast path, all in C: plain ints/floats whose sum is finite (so each one is).
        try:
            fast = _PLAIN_NUMBERS.issuperset(map(type, values)) and math.isfinite(sum(values, 0.0))
        except OverflowError:
            fast = False
        if fast:
            line = self._encoder.encode(step, time.time(), metrics)
            self._summary.update(metrics)
        else:
            line = jsonl.encode_row(self._slow_row(metrics, step))
        self._last_step = step
        with self._buf_lock:
            self._buf.append(line)
            full = len(self._buf) >= self._flush_every
        if full:
            self.flush()

    def _slow_row(self, metrics: dict[str, Any], step: int) -> dict[str, Any]:
        """Row for values that need conversion (tensors, numpy, bool) or are not finite."""
        numeric = {name: _number(name, value) for name, value in metrics.items()}
        for name, value in numeric.items():
            if type(value) is float and not math.isfinite(value):
                self._warn_nonfinite(name, value, step)
        self._summary.update(numeric)
        # encode_row stores non-finite values as strings and lists them in _nonfinite.
        return {"step": step, "time": time.time(), **self._row_head, **numeric}

    def log_batch(self, rows: Iterable[Mapping[str, Any]], start_step: int | None = None) -> int:
        """Buffer many rows in one call; returns how many.

        Each row maps metric names to values and may hold its own `"step"`; rows without
        one get consecutive steps from `start_step` (default: one more than the last step).
        The same rules as log_metrics apply to every row (names, values, steps that never
        decrease). Rows without `"step"` that share their names go through log_columns'
        bulk encoder.
        """
        self._check_open()
        rows = rows if isinstance(rows, list) else list(rows)
        if rows and all(type(r) is dict for r in rows):
            keys = tuple(rows[0])
            if keys and "step" not in rows[0] and all(tuple(r) == keys for r in rows):
                return self.log_columns({k: [r[k] for r in rows] for k in keys}, start_step=start_step)
        count = 0
        next_step = start_step
        for row in rows:
            if not isinstance(row, Mapping):
                raise TypeError(f"log_batch: row {count} is a {type(row).__name__}, not a mapping")
            metrics = dict(row)
            step = metrics.pop("step", None)
            if step is None and next_step is not None:
                step = next_step
            self.log_metrics(metrics, step=step)
            next_step = self._last_step + 1 if self._last_step is not None else None
            count += 1
        return count

    def log_columns(self, columns: Mapping[str, Any], steps: Any = None,
                    start_step: int | None = None) -> int:
        """Buffer many rows given as columns: metric name -> sequence of values (list, numpy
        array or 1-D tensor), all of one length; returns the number of rows.

        `steps` (a sequence of ints, non-decreasing) gives each row's step; without it rows
        get consecutive steps from `start_step` (default: one more than the last step). The
        rows are the ones log_metrics would write, byte for byte; numeric columns of finite
        values are encoded in bulk (about 20x faster than one log_metrics call per row), any
        other column (non-finite values, tensors of another device, objects) row by row.
        """
        import numpy as np

        from .store import jsonl_bulk  # numpy: imported on first use, not with rustorch_tools

        self._check_open()
        if not isinstance(columns, Mapping) or not columns:
            raise ValueError("log_columns needs a non-empty mapping of metric name -> values")
        names = list(columns)
        for name in names:
            if name not in self._known_names:
                layout.validate_metric_name(name)
        arrays = []
        for name, values in columns.items():
            if hasattr(values, "detach"):  # a tensor: its values on the CPU
                values = values.detach().cpu().numpy()
            arr = np.asarray(values)
            if arr.ndim != 1:
                raise ValueError(f"log_columns: column {layout.printable(name)!r} is not 1-D "
                                 f"(shape {arr.shape})")
            arrays.append(arr)
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError(f"log_columns: columns differ in length ({sorted({len(a) for a in arrays})})")
        if n == 0:
            return 0
        last = self._last_step
        if steps is None:
            first = start_step if start_step is not None else (0 if last is None else last + 1)
            if type(first) is not int or first < 0:
                raise ValueError(f"start_step must be an int >= 0, got {first!r}")
            step_arr = np.arange(first, first + n, dtype=np.int64)
        else:
            step_arr = np.asarray(steps)
            if step_arr.shape != (n,) or step_arr.dtype.kind not in "iu":
                raise ValueError(f"log_columns: steps must be {n} ints")
            step_arr = step_arr.astype(np.int64)
            if (np.diff(step_arr) < 0).any():
                raise ValueError("log_columns: steps must not decrease")
        if step_arr[0] < 0:
            raise ValueError(f"step must be >= 0, got {int(step_arr[0])}")
        if last is not None and step_arr[0] < last:
            raise ValueError(f"step {int(step_arr[0])} is smaller than the last step {last} logged "
                             "by this run; steps must not decrease")
        texts = [jsonl_bulk.column_text(a) for a in arrays]
        if any(t is None for t in texts):  # non-finite or non-numeric values: row by row
            for i in range(n):
                self.log_metrics({name: a[i] for name, a in zip(names, arrays, strict=True)},
                                 step=int(step_arr[i]))
            return n
        self._known_names.update(names)
        data = jsonl_bulk.encode_columns(self._row_head, time.time(),
                                         jsonl_bulk.column_text(step_arr) or b"", names,
                                         texts)  # type: ignore[arg-type]
        self._summary.update({name: int(a[-1]) if a.dtype.kind == "b" else a[-1].item()
                              for name, a in zip(names, arrays, strict=True)})
        self._last_step = int(step_arr[-1])
        with self._buf_lock:
            self._buf.append(data)
        self.flush()  # one write for the whole call
        return n

    def rewind(self, step: int, checkpoint: str | None = None) -> None:
        """Continue logging after `step` (a run resumed from an older checkpoint).

        Writes a `_rewind` marker row (docs/runs-format.md) so that the rows that follow,
        whose steps repeat ones logged before, are a documented resume, not a step descent.
        """
        self._check_open()
        if type(step) is not int or step < 0:
            raise ValueError(f"rewind: step must be an int >= 0, got {step!r}")
        last = self._last_step
        if last is None or step >= last:
            return  # nothing to rewind: steps already continue after `step`
        marker: dict[str, Any] = {"from_step": last}
        if checkpoint is not None:
            marker["checkpoint"] = checkpoint
        row = {"step": step, "time": time.time(), **self._row_head, "_rewind": marker}
        with self._buf_lock:
            self._buf.append(jsonl.encode_row(row))
        self.flush()
        self._last_step = step

        def change(doc: dict[str, Any]) -> None:
            summary = doc.setdefault("summary", {})
            summary["step"] = step  # later rows raise it again; see _merge_summary
            summary["updated_at"] = time.time()

        self.files.update(change)

    def log_metric(self, name: str, value: Any, step: int | None = None) -> None:
        self.log_metrics({name: value}, step=step)

    def _warn_nonfinite(self, name: str, value: float, step: int) -> None:
        if name not in self._warned_nonfinite:
            self._warned_nonfinite.add(name)
            warnings.warn(
                f"run {self.run_id}: metric {name!r} is {value} at step {step}; kept and flagged "
                "in _nonfinite (further non-finite values of it are not warned about)",
                NonFiniteMetricWarning,
                stacklevel=3,
            )

    def flush(self) -> None:
        """Append the buffered rows now (one locked write).

        If the write fails (disk full, file too large, I/O error), no partial line is left
        in the file, the rows stay buffered (retried by the next flush) and the error is
        raised.
        """
        with self._flush_lock:
            with self._buf_lock:
                rows, self._buf = self._buf, []
            if rows:
                try:
                    self.files.append_metrics(b"".join(rows))
                except BaseException:
                    with self._buf_lock:
                        self._buf[:0] = rows  # kept, in order, ahead of newer rows
                    raise

    # -- params, tags, artifacts -----------------------------------------------------------
    def log_params(self, params: Mapping[str, Any], overwrite: bool = False) -> None:
        """Merge `params` into run.json. Changing an existing value needs `overwrite=True`."""
        self._check_open()
        new = to_json_object(params, "params")

        def change(doc: dict[str, Any]) -> None:
            current = doc.setdefault("params", {})
            if not overwrite:
                clash = {k: (current[k], v) for k, v in new.items() if k in current and current[k] != v}
                if clash:
                    raise RunStateError(
                        f"run {self.run_id}: params already set to other values: "
                        + ", ".join(f"{k}={old!r} (new {v!r})" for k, (old, v) in clash.items())
                        + "; pass overwrite=True to change them"
                    )
            current.update(new)

        self.files.update(change)

    def set_tags(self, tags: Mapping[str, Any] | list[str]) -> None:
        """Merge string tags into run.json."""
        self._check_open()
        new = _tags(tags)
        self.files.update(lambda doc: doc.setdefault("tags", {}).update(new))

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None, overwrite: bool = False) -> str:
        """Copy a file (or a directory's files) into artifacts/<name>; returns the relative path.

        Each file is copied atomically, its SHA-256 recorded in manifest.json, and an
        `artifact` event written.
        """
        self._check_open()
        src = Path(path)
        if not src.exists():
            raise FileNotFoundError(f"log_artifact: {src} does not exist")
        name = layout.validate_name(name if name is not None else src.name, "artifact name")
        rel_root = f"{layout.ARTIFACTS}/{name}"
        if self.files.artifact_exists(name) and not overwrite:
            raise ArtifactExistsError(f"run {self.run_id} already has artifact {name!r}; pass overwrite=True")
        if not src.is_file() and not src.is_dir():
            raise RustorchToolsError(f"log_artifact: {src} is neither a file nor a directory")
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        total = 0
        for file in files:
            rel = rel_root if file is src else f"{rel_root}/{file.relative_to(src).as_posix()}"
            for part in rel.split("/")[1:]:
                layout.validate_name(part, "artifact path component", max_len=255)
            _digest, size = self.files.copy_artifact(file, rel)
            total += size
        self.files.append_event("artifact", {"name": name, "files": len(files), "bytes": total},
                                rank=self.rank)
        return rel_root

    # -- checkpoints and telemetry ---------------------------------------------------------
    def save_checkpoint(self, **kwargs: Any) -> Any:
        """`rustorch_tools.checkpoint.save_checkpoint(self, **kwargs)`: into checkpoints/."""
        self._check_open()
        from . import checkpoint

        return checkpoint.save_checkpoint(self, **kwargs)

    def log_device_telemetry(self, step: int | None = None) -> dict[str, float]:
        """Log rustorch op counters and accelerator memory peaks as metrics; returns them.

        Op counters (`rustorch_device.op_stats()`, cumulative since process start or
        `reset_op_stats`) become `device/ops/<op>/native|fallback` plus the totals
        `device/ops/native_total|fallback_total`. `device/memory/max_allocated_bytes` comes
        from `torch.accelerator.max_memory_allocated()`. Missing pieces (no device built, no
        accelerator) are skipped; nothing is logged when neither is there.
        """
        values: dict[str, float] = {}
        stats = _op_stats()
        if stats is not None:
            native = fallback = 0
            for op, counts in sorted(stats.items()):
                values[f"device/ops/{op}/native"] = counts.get("native", 0)
                values[f"device/ops/{op}/fallback"] = counts.get("fallback", 0)
                native += counts.get("native", 0)
                fallback += counts.get("fallback", 0)
            values["device/ops/native_total"] = native
            values["device/ops/fallback_total"] = fallback
        values.update(_memory_peaks())
        if values:
            self.log_metrics(values, step=step)
        return values

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether finish() ran in this process."""
        return self._closed

    @property
    def status(self) -> str:
        return self.files.read()["status"]

    def read(self) -> dict[str, Any]:
        """run.json as stored now."""
        return self.files.read()

    def log_event(self, event: str, detail: dict[str, Any] | None = None) -> None:
        self.files.append_event(event, detail, rank=self.rank)

    def finish(self, status: str = "finished", error: BaseException | None = None) -> None:
        """Flush, stop the background thread and record the end (idempotent).

        `status` is `finished` or `failed`; see the class docstring for several ranks.
        """
        if self._closed or os.getpid() != self._pid:
            return
        if status not in ("finished", "failed"):
            raise ValueError(f"finish: status must be 'finished' or 'failed', got {status!r}")
        self._closed = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        atexit.unregister(self._atexit)
        self.flush()
        self.files.fsync("metrics")
        now = time.time()
        err = None
        if status == "failed":
            err = {"type": "Error", "message": "failed"}
            if error is not None:
                err = {
                    "type": type(error).__name__,
                    "message": str(error)[:4000],
                    "traceback": "".join(traceback.format_exception(error))[-20000:],
                }
            if self.rank is not None:
                err["message"] = f"rank {self.rank}: {err['message']}"

        finished_now = False

        def change(doc: dict[str, Any]) -> None:
            nonlocal finished_now
            doc["heartbeat_at"] = now
            self._merge_summary(doc)
            ranks = doc.get("ranks")
            if ranks is not None:
                ranks[_rank_key(self.rank)] = status
            else:
                ranks = {}  # one process, no ranks: nothing else to wait for
            if status == "failed" and doc["status"] != "failed":
                doc.update(status="failed", ended_at=now, error=err)
            elif (
                status == "finished"
                and doc["status"] in ("running", "crashed")
                and all(state == "finished" for state in ranks.values())
            ):
                # The last rank to finish cleanly (or the only process) finishes the run.
                doc.update(status="finished", ended_at=now, error=None)
                finished_now = True

        self.files.update(change)
        if status == "failed":
            self.files.append_event("failed", {"error": err}, rank=self.rank)
        elif finished_now:
            self.files.append_event("finished", {"step": self._last_step}, rank=self.rank)
        self.files.fsync("events")
        if status == "failed" or finished_now:
            # What the run holds now becomes provable: validation reports any later loss.
            self.files.record_logs()

    close = finish

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish("finished")
        else:
            self.finish("failed", exc)

    def _atexit(self) -> None:
        # Interpreter exit without finish(): an uncaught exception (sys.last_value) means failed.
        error = getattr(sys, "last_value", None)
        try:
            self.finish("failed" if error is not None else "finished", error)
        except Exception as exc:  # the interpreter is exiting: say what was lost, no traceback
            with self._buf_lock:
                lost = len(self._buf)
            print(f"rustorch_tools: run {self.run_id} could not be finished at exit ({exc}); "
                  f"{lost} buffered rows were not written", file=sys.stderr)

    def _check_open(self) -> None:
        if self._closed:
            raise RunStateError(f"run {self.run_id} is already finished in this process")
        if self._bg_error is not None:
            error, self._bg_error = self._bg_error, None
            raise RustorchToolsError(f"run {self.run_id}: background writer failed: {error}") from error

    def _merge_summary(self, doc: dict[str, Any]) -> None:
        if self._last_step is None:
            return
        summary = doc.setdefault("summary", {})
        metrics = summary.setdefault("metrics", {})
        latest = dict(self._summary)  # one C-level copy: safe against the logging thread
        metrics.update({k: _summary_value(v) for k, v in latest.items()})
        summary["step"] = max(summary.get("step", self._last_step), self._last_step)
        summary["updated_at"] = time.time()

    def _heartbeat(self) -> None:
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            doc["heartbeat_at"] = now
            self._merge_summary(doc)

        self.files.update(change)

    def _background(self) -> None:
        tick = min(self._flush_interval_s, self._heartbeat_interval_s)
        last_flush = last_beat = time.monotonic()
        while not self._stop.wait(tick):
            try:
                now = time.monotonic()
                if now - last_flush >= self._flush_interval_s:
                    self.flush()
                    last_flush = now
                if now - last_beat >= self._heartbeat_interval_s:
                    self._heartbeat()
                    last_beat = now
            except Exception as exc:  # reported to the main thread on its next call
                if self._bg_error is None:
                    self._bg_error = exc
                    warnings.warn(f"run {self.run_id}: background writer failed: {exc}", stacklevel=1)


def _rank_key(rank: int | None) -> str:
    """Key of run.json's `ranks` map: the rank, or "main" for a process logging without one."""
    return "main" if rank is None else str(rank)


def _op_stats() -> dict[str, dict[str, int]] | None:
    try:
        import rustorch_device
    except Exception:  # device not built in this checkout: skip, as documented
        return None
    try:
        return rustorch_device.op_stats()
    except Exception:
        return None


def _memory_peaks() -> dict[str, float]:
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    try:
        if not torch.accelerator.is_available():
            return {}
        return {
            "device/memory/max_allocated_bytes": torch.accelerator.max_memory_allocated(),
            "device/memory/allocated_bytes": torch.accelerator.memory_allocated(),
        }
    except Exception:  # an accelerator whose allocator keeps no statistics
        return {}


def _parent_ref(root: Path, parent: Any, relation: str, checkpoint: str | None) -> dict[str, Any] | None:
    if parent is None:
        return None
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    parent_id = parent.run_id if isinstance(parent, Run) else parent
    if not RunStore(root).has_run(parent_id):
        raise RunNotFoundError(f"parent run {parent_id!r} not found under {root}")
    return {"run_id": parent_id, "relation": relation, "checkpoint": checkpoint}


def start_run(
    root: str | os.PathLike[str] = "runs",
    name: str | None = None,
    config: Any = None,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    tags: Mapping[str, Any] | list[str] | None = None,
    run_id: str | None = None,
    rank: int | None = None,
    parent: Run | str | None = None,
    relation: str = "fork",
    parent_checkpoint: str | None = None,
    flush_every: int = DEFAULT_FLUSH_EVERY,
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
) -> Run:
    """Create a run (or open `run_id`, creating it if absent) and return its `Run`.

    - New run: `runs/<YYYYMMDD-HHMMSS-name-xxxxxxxx>/` with run.json (status running) and a
      `created` event. `parent=` records lineage (`relation` resume / fork / finetune).
    - `run_id=` an existing run, `rank=None`: reopen it (a finished, failed or crashed run
      becomes running again with a `resumed` event; a stale one first gets a `crashed`
      event). A live run (fresh heartbeat) is refused unless a `rank` is given.
    - `run_id=` and `rank=r`: join as DDP rank r; the first rank to arrive creates the run.
    """
    root = Path(root)
    if name is not None:
        layout.validate_name(name, "run name")
    if rank is not None and (type(rank) is not int or rank < 0):
        raise ValueError(f"rank must be an int >= 0, got {rank!r}")
    if flush_every < 1 or flush_interval_s <= 0 or heartbeat_interval_s <= 0:
        raise ValueError("flush_every must be >= 1 and the intervals > 0")
    cfg = to_json_object(config, "config")
    prm = to_json_object(params, "params")
    tag_map = _tags(tags)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    parent_ref = _parent_ref(root, parent, relation, parent_checkpoint)
    if run_id is None:
        run_id = layout.new_run_id(name)
    else:
        layout.validate_run_id(run_id)
    files = RunStore(root).run(run_id)
    files.create_dirs()
    last_step = None
    with files.lock():
        if not files.exists():
            doc = _new_run_doc(run_id, name or run_id, cfg, prm, seed, tag_map, parent_ref, heartbeat_interval_s)
            if rank is not None:
                doc["ranks"] = {_rank_key(rank): "running"}
            files.write(doc)
            files.init_layout()
            files.append_event("created", {"name": doc["name"]}, rank=rank)
        else:
            last_step = _reopen(files, rank, cfg, prm, tag_map, heartbeat_interval_s)
    run = Run(root, run_id, rank, flush_every, flush_interval_s, heartbeat_interval_s)
    run._last_step = last_step
    return run


def _last_logged_step(files: RunFiles, rank: int | None) -> int | None:
    """The last step `rank` (None: rows without a rank) logged in metrics.jsonl: the highest
    since its last `_rewind` marker (which restarts the count at the marker's step)."""
    last = None
    for row in files.iter_valid_rows("metrics"):
        step = row.get("step")
        if row.get("rank") != rank or type(step) is not int:
            continue
        if "_rewind" in row or last is None or step > last:
            last = step
    return last


def _reopen(
    files: RunFiles,
    rank: int | None,
    cfg: dict[str, Any],
    prm: dict[str, Any],
    tag_map: dict[str, str],
    heartbeat_interval_s: float,
) -> int | None:
    """Reopen an existing run (see start_run); returns the last step this writer logged, so
    that logging continues at the next step."""
    doc = files.read()
    now = time.time()
    live = doc["status"] == "running" and not runs.is_stale(doc, now)
    if live and rank is None:
        age = now - doc["heartbeat_at"]
        raise RunStateError(
            f"run {doc['run_id']} is live (heartbeat {age:.0f} s ago, pid "
            f"{(doc.get('writer') or doc.get('environment', {})).get('pid')}); pass rank= to log into it "
            "from another process"
        )
    if cfg and doc["config"] and cfg != doc["config"]:
        raise RunStateError(f"run {doc['run_id']} was created with another config; fork it instead")
    if doc["status"] == "running" and not live:
        files.append_event("crashed", {"heartbeat_at": doc["heartbeat_at"], "found_at": now})
    previous = doc["status"]
    if not live:
        doc.update(status="running", ended_at=None, error=None)
        doc.pop("ranks", None)  # a new session: ranks join afresh
    if rank is not None:
        if live and "ranks" not in doc:
            doc["ranks"] = {_rank_key(None): "running"}  # the process already writing it
        doc.setdefault("ranks", {})[_rank_key(rank)] = "running"
    doc.update(heartbeat_at=now, heartbeat_interval_s=heartbeat_interval_s)
    if not live:
        doc["writer"] = runs.writer_identity()  # this process writes the run from now on
    doc["config"] = doc["config"] or cfg
    doc["params"] = {**doc["params"], **prm}
    doc["tags"] = {**doc["tags"], **tag_map}
    files.write(doc)
    if not live:
        files.append_event("resumed", {"previous_status": previous}, rank=rank)
    return _last_logged_step(files, rank)


def attach_run(root: str | os.PathLike[str], run_id: str, rank: int | None = None, **kwargs: Any) -> Run:
    """Open an existing run (RunNotFoundError if absent); see `start_run`."""
    if not RunStore(root).has_run(run_id):
        raise RunNotFoundError(f"no run {run_id!r} under {root}")
    return start_run(root, run_id=run_id, rank=rank, **kwargs)


__all__ = ["Run", "start_run", "attach_run", "NonFiniteMetricWarning", "InvalidNameError"]
