"""Plans and drives a pipeline: resolves each stage instance once its upstream results exist,
computes its cache key, skips it when a finished run already holds that key, and otherwise
hands it to the executor, keeping `concurrency` executions in flight.

State lives in RUNS_DIR/.pipelines/<name>/ (files are the source of truth; rustorch_tools.store.pipelines
makes and reads them):
  state.json               the last invocation: each instance's status, key, execution, run
  exec/<exec_id>/          one execution: spec.json, lock, attempts.json, result.json
A restarted driver (after `kill -9`) finds finished executions by their result.json and
re-submits the unfinished ones under the same exec_id, whose lock makes the new attempt wait
for an orphaned one still running and then adopt its result: nothing runs or counts twice.
"""

from __future__ import annotations

import queue
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..store.pipelines import EXEC, PipelineFiles
from . import cache, refs, runview
from .execute import RESULT, SPEC
from .spec import Instance, Pipeline, PipelineError

SAVE_INTERVAL_S = 1.0


@dataclass
class InstanceState:
    id: str
    stage: str
    status: str = "pending"  # pending|cached|running|done|failed|skipped|blocked
    key: str | None = None
    exec_id: str | None = None
    run_id: str | None = None
    attempts: int = 0
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    overhead_s: float = 0.0  # driver time spent resolving + cache-checking it

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Outcome:
    status: str  # succeeded | failed
    instances: dict[str, InstanceState] = field(default_factory=dict)
    wall_s: float = 0.0


class Driver:
    def __init__(self, pipeline: Pipeline, runs_dir: str | Path, executor: Any = None,
                 force: tuple[str, ...] = (), concurrency: int | None = None) -> None:
        self.p = pipeline
        self.runs_dir = Path(runs_dir).resolve()
        self.files = PipelineFiles(self.runs_dir, pipeline.name)
        self.executor = executor
        self.concurrency = concurrency or pipeline.concurrency
        unknown = [s for s in force if s not in pipeline.stages and not any(
            s == i.id for insts in pipeline.instances.values() for i in insts)]
        if unknown:
            raise PipelineError([f"--force {s}: no such stage" for s in unknown])
        self.force = set(force)
        self.results: dict[str, dict[str, Any]] = {}  # instance id -> result of a done execution
        self._saved_at = 0.0
        self.states = {i.id: InstanceState(i.id, i.stage.name)
                       for n in pipeline.order for i in pipeline.instances[n]}
        try:
            previous = self.files.read_state() or {}
        except (OSError, ValueError, RustorchToolsError) as exc:
            raise PipelineError([f"pipeline state unreadable: {exc}"]) from None
        instances = previous.get("instances") if isinstance(previous, dict) else None
        # Only well-formed entries are trusted (a damaged one just loses its forced exec id).
        self.previous: dict[str, Any] = {k: v for k, v in (instances or {}).items()
                                         if isinstance(v, dict) and (v.get("exec_id") is None
                                                                     or self.files.is_exec_id(v.get("exec_id")))
                                         and isinstance(v.get("key"), str | None)} if isinstance(instances, dict) else {}

    # -- resolution -----------------------------------------------------------------------
    def _lookup(self, inst: Instance) -> Any:
        def lookup(path: str) -> Any:
            head, _, rest = path.partition(".")
            if head == "matrix":
                return inst.point[rest]
            if head == "vars":
                return self.p.vars[rest]
            if head == "pipeline":
                return {"name": self.p.name, "dir": str(self.p.dir), "runs_dir": str(self.runs_dir),
                        "python": sys.executable}[rest]
            if head == "self":
                return "${self.outputs_dir}"  # known where the stage executes
            field_, _, key = rest.partition(".")
            values = []
            for up in self.p.instances[head]:
                r = self.results[up.id]
                values.append(r["outputs"][key] if field_ == "outputs" else r[field_])
            return values if self.p.stages[head].matrix else values[0]

        return lookup

    def _resolve(self, inst: Instance) -> dict[str, Any]:
        stage, lookup = inst.stage, self._lookup(inst)
        try:
            if stage.kind == "command":
                body = refs.substitute_argv(stage.body, lookup)
            else:
                body = refs.substitute(stage.body, lookup)
            params = refs.substitute(stage.params, lookup)
        except (KeyError, refs.RefError) as exc:
            raise PipelineError([f"stage {inst.id!r}: cannot resolve {exc}"]) from None
        if stage.kind == "train":
            from ..train.config import check

            problems = check(body)
            if problems:
                raise PipelineError([f"stage {inst.id!r}: train: {p}" for p in problems])
        upstream = {u.id: self.results[u.id]["digest"] for d in stage.deps for u in self.p.instances[d]}
        key = cache.key(stage.kind, body, params, inst.point, upstream, self.p.dir)
        return {"body": body, "params": params, "key": key,
                "upstream_runs": [self.results[u]["run_id"] for u in upstream]}

    def _exec_id(self, inst: Instance, key: str) -> str:
        forced = inst.stage.name in self.force or inst.id in self.force
        prev = self.previous.get(inst.id, {})
        if forced:
            return f"{inst.slug}-{key[:16]}-f{time.time_ns():x}"
        if prev.get("key") == key and prev.get("exec_id"):
            return prev["exec_id"]  # the last execution of this key (maybe a forced one)
        return f"{inst.slug}-{key[:16]}"

    def _cached(self, exec_id: str) -> dict[str, Any] | None:
        try:
            result = self.files.read_exec(exec_id, RESULT)
        except (OSError, ValueError):
            return None
        if not result or result.get("status") != "done":
            return None
        if runview.status(self.runs_dir, result["run_id"]) != "finished":
            return None  # the run was deleted or damaged since: run the stage again
        return result

    def _prepare(self, inst: Instance) -> tuple[str, dict[str, Any]] | None:
        """Resolve and cache-check; returns (exec_id, spec) to run, None when cached."""
        t0 = time.perf_counter()
        st = self.states[inst.id]
        resolved = self._resolve(inst)
        st.key = resolved["key"]
        st.exec_id = self._exec_id(inst, st.key)
        cached = self._cached(st.exec_id)
        if cached is not None:
            st.status, st.run_id = "cached", cached["run_id"]
            self.results[inst.id] = cached
            st.overhead_s = time.perf_counter() - t0
            return None
        spec = {"exec_id": st.exec_id, "instance": inst.id, "stage": inst.stage.name,
                "kind": inst.stage.kind, "body": resolved["body"], "params": resolved["params"],
                "point": inst.point, "outputs": inst.stage.outputs, "cache_key": st.key,
                "upstream_runs": resolved["upstream_runs"], "runs_dir": str(self.runs_dir),
                "pipeline": self.p.name, "pipeline_dir": str(self.p.dir),
                "exec_dir": str(self.files.dir / EXEC / st.exec_id)}
        st.overhead_s = time.perf_counter() - t0
        return st.exec_id, spec

    # -- state ------------------------------------------------------------------------------
    def _save(self, status: str, started: float, urgent: bool = True) -> None:
        """Write state.json. Completion is recorded by each execution's result.json, so the
        driver's own file only needs to be current at the end, when a forced execution id is
        chosen (urgent), and about once a second for `pipeline status`."""
        now = time.monotonic()
        if not urgent and now - self._saved_at < SAVE_INTERVAL_S:
            return
        self._saved_at = now
        self.files.write_state({
            "pipeline": self.p.name, "file": str(self.p.path), "status": status,
            "started_at": started, "updated_at": time.time(),
            "executor": getattr(self.executor, "name", None),
            "instances": {k: v.to_json() for k, v in self.states.items()}})

    # -- plan -------------------------------------------------------------------------------
    def plan(self) -> list[InstanceState]:
        """What `run` would do now: cached, or run (with the reason when an upstream runs)."""
        for name in self.p.order:
            for inst in self.p.instances[name]:
                st = self.states[inst.id]
                ups = [u for d in inst.stage.deps for u in self.p.instances[d]]
                if any(self.states[u.id].status != "cached" for u in ups):
                    st.status, st.error = "run", "after upstream"
                    continue
                if self._prepare(inst) is not None:
                    st.status = "run"
        return list(self.states.values())

    # -- run --------------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = time.time()
        t0 = time.perf_counter()
        done_q: queue.Queue[tuple[str, Any]] = queue.Queue()
        specs: dict[str, Path] = {}
        in_flight: set[str] = set()
        failed_stop = False
        insts = {i.id: i for n in self.p.order for i in self.p.instances[n]}
        self._save("running", started)

        def ready(iid: str) -> bool:
            return all(self.states[u.id].status in ("done", "cached")
                       for d in insts[iid].stage.deps for u in self.p.instances[d])

        def blocked(iid: str) -> bool:
            return any(self.states[u.id].status in ("failed", "skipped")
                       for d in insts[iid].stage.deps for u in self.p.instances[d])

        def submit(iid: str) -> None:
            st = self.states[iid]
            st.attempts += 1
            st.status, st.started_at = "running", st.started_at or time.time()
            in_flight.add(iid)
            self.executor.submit(specs[iid], lambda r, iid=iid: done_q.put((iid, r)))

        while True:
            progressed = True
            while progressed:  # start what can start (cached ones complete at once)
                progressed = False
                for iid, st in self.states.items():
                    if st.status != "pending":
                        continue
                    if blocked(iid) or failed_stop:
                        st.status = "skipped"
                        st.error = "stopped after a failure" if failed_stop and not blocked(iid) else "upstream failed"
                        progressed = True
                        continue
                    if not ready(iid) or len(in_flight) >= self.concurrency:
                        continue
                    progressed = True
                    try:
                        prepared = self._prepare(insts[iid])
                    except PipelineError as exc:  # an upstream value of the wrong type, ...
                        st.status, st.error, st.ended_at = "failed", "; ".join(exc.problems), time.time()
                        failed_stop = failed_stop or self.p.on_failure == "stop"
                        continue
                    if prepared is None:
                        continue
                    exec_id, spec = prepared
                    execution = self.files.execution(exec_id)
                    if not execution.exists(SPEC):
                        execution.write(SPEC, spec)
                    specs[iid] = execution.path(SPEC)
                    submit(iid)
                    self._save("running", started, urgent="-f" in exec_id)
            if not in_flight:
                break
            iid, result = done_q.get()
            in_flight.discard(iid)
            st = self.states[iid]
            if isinstance(result, dict) and result.get("status") == "done":
                st.status, st.run_id, st.error, st.ended_at = "done", result["run_id"], None, time.time()
                self.results[iid] = result
            else:
                st.error = (result.get("error") if isinstance(result, dict)
                            else f"{type(result).__name__}: {result}")
                st.run_id = result.get("run_id") if isinstance(result, dict) else st.run_id
                if st.attempts <= insts[iid].stage.retries:
                    submit(iid)
                    self._save("running", started, urgent=False)
                    continue
                st.status, st.ended_at = "failed", time.time()
                if self.p.on_failure == "stop":
                    failed_stop = True
            self._save("running", started, urgent=False)
        ok = all(s.status in ("done", "cached") for s in self.states.values())
        self._save("succeeded" if ok else "failed", started)
        return Outcome("succeeded" if ok else "failed", self.states, time.perf_counter() - t0)


def status(pipeline: Pipeline, runs_dir: str | Path) -> dict[str, Any] | None:
    """The last invocation's state.json (None when the pipeline never ran here)."""
    files = PipelineFiles(runs_dir, pipeline.name)
    path = files.state_path
    try:
        doc = files.read_state()
    except (OSError, ValueError, RustorchToolsError) as exc:
        raise PipelineError([f"pipeline state unreadable: {exc}"]) from None
    if doc is None:
        return None
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if (not isinstance(instances, dict) or not isinstance(doc.get("status"), str) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str) and isinstance(i.get("status"), str)
            for i in instances.values())):
        raise PipelineError([f"pipeline state {path} is damaged (not the state this tool writes)"])
    return doc
