"""Executes one stage instance as a run: the code that runs on a pool process or a Dask worker.

The driver writes `exec/<exec_id>/spec.json`; `execute(spec_path)` then (every file of the
execution folder through rustorch_tools.store.pipelines.ExecFiles)
1. takes the execution's file lock (a second attempt of the same execution — a retry after
   a worker died, or a restarted driver — waits here while the first is still running);
2. returns the recorded result when an earlier attempt finished (idempotent: a stage is
   never counted twice), adopting a finished run whose result was not written yet;
3. otherwise starts a run (tags pipeline/stage/instance/cache_key, upstream run ids in the
   params), runs the stage with its stdout/stderr in the run's `stage.log` artifact, logs the
   outputs (`outputs.json`, and the files a stage writes into its outputs folder), finishes
   the run and writes `result.json` atomically.

    python -m rustorch_tools.pipeline.execute SPEC.json     # one execution in its own process
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.pipelines import ExecFiles, read_json
from . import runview

RESULT, ATTEMPTS, SPEC = "result.json", "attempts.json", "spec.json"
OUTPUTS_DIR = "outputs"


@dataclass
class StageContext:
    """What a python stage gets as `ctx`: its open run and a folder for output files."""

    run: Any
    runs_dir: Path
    outputs_dir: Path  # files written here become the run's artifacts under outputs/
    pipeline_dir: Path
    instance: str


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str).encode()


def _digest_files(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[p.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def outputs_digest(outputs: dict[str, Any], files: dict[str, str]) -> str:
    return hashlib.sha256(canonical({"outputs": outputs, "files": files})).hexdigest()


@contextlib.contextmanager
def _fd_redirect(log: Path) -> Iterator[None]:
    """stdout and stderr (the file descriptors, so C++ output too) appended to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _run_body(spec: dict[str, Any], run: Any, outputs_dir: Path, log: Path) -> dict[str, Any]:
    kind = spec["kind"]
    here = str(outputs_dir)
    spec = {**spec, "body": _self_refs(spec["body"], here), "params": _self_refs(spec["params"], here)}
    if kind == "train":
        from ..train.config import record_for_replay, train_in_run

        body = spec["body"]  # recorded so that `replay` can train this run again on its own
        return train_in_run(body, run, on_run_start=lambda r: record_for_replay(body, r))
    if kind == "python":
        from ..typecheck import accepts_any_keyword, check_params, parameters
        from .spec import CONTEXT_PARAM, _load_entry

        fn = _load_entry(spec["body"])
        params = dict(spec["params"])
        problems = check_params(f"stage {spec['stage']!r} ({spec['body']})", params,
                                parameters(fn, skip=(CONTEXT_PARAM,)), open_ended=accepts_any_keyword(fn))
        if problems:
            raise TypeError("; ".join(problems))
        if CONTEXT_PARAM in parameters(fn):
            params[CONTEXT_PARAM] = StageContext(run, Path(spec["runs_dir"]), outputs_dir,
                                                 Path(spec["pipeline_dir"]), spec["instance"])
        out = fn(**params)
        if out is None:
            return {}
        if not isinstance(out, dict):
            raise TypeError(f"{spec['body']} returned {type(out).__name__}; a stage returns a dict of outputs")
        return out
    env = {**os.environ, "RUSTORCH_STAGE_RUN_ID": run.run_id, "RUSTORCH_STAGE_RUN_DIR": str(run.dir),
           "RUSTORCH_STAGE_OUTPUTS": str(outputs_dir), "RUSTORCH_RUNS_DIR": str(spec["runs_dir"])}
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(spec['body'])}\n".encode())
        f.flush()
        proc = subprocess.run(spec["body"], cwd=spec["pipeline_dir"], env=env, stdout=f,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"command exited with status {proc.returncode}")
    written = outputs_dir / "outputs.json"
    out = {"returncode": 0}
    if written.is_file() and not written.is_symlink():
        data = read_json(written)
        if not isinstance(data, dict):
            raise ValueError("outputs.json of a command must hold a JSON object")
        out.update(data)
        written.unlink()
    return out


def _self_refs(value: Any, outputs_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("${self.outputs_dir}", outputs_dir)
    if isinstance(value, list):
        return [_self_refs(v, outputs_dir) for v in value]
    if isinstance(value, dict):
        return {k: _self_refs(v, outputs_dir) for k, v in value.items()}
    return value


def _result_of(execution: ExecFiles, spec: dict[str, Any]) -> dict[str, Any] | None:
    """A finished earlier attempt's result (written, or recovered from a finished run)."""
    done = execution.read(RESULT)
    if done and done.get("status") == "done" and runview.status(spec["runs_dir"], done["run_id"]) == "finished":
        return {**done, "adopted": True}
    for run_id in (execution.read(ATTEMPTS) or []):
        pending = execution.read(f"outputs-{run_id}.json")
        if pending is not None and runview.status(spec["runs_dir"], run_id) == "finished":
            execution.write(RESULT, pending)
            return {**pending, "adopted": True}
    return None


def _start(spec: dict[str, Any]) -> Any:
    from .. import start_run

    name = f"{spec['pipeline']}.{spec['instance']}"
    tags = {"pipeline": spec["pipeline"], "stage": spec["stage"], "instance": spec["instance"],
            "cache_key": spec["cache_key"][:16]}
    params = {"pipeline/upstream": spec["upstream_runs"], "pipeline/matrix": spec["point"],
              "pipeline/exec_id": spec["exec_id"]}
    if spec["kind"] == "train":
        from ..train.config import resolve

        cfg = resolve(spec["body"])
        return start_run(spec["runs_dir"], name, config=cfg, seed=cfg["seed"], tags=tags, params=params)
    config = {"kind": spec["kind"], "entry": spec["body"], "params": spec["params"],
              "entry_point": "rustorch_tools.pipeline.execute:execute"}
    return start_run(spec["runs_dir"], name, config=config, tags=tags, params=params)


def execute(spec_path: str | os.PathLike[str], redirect: bool = True) -> dict[str, Any]:
    """Run one execution (see the module doc); returns its result dict (status done/failed)."""
    spec_path = Path(spec_path)
    execution = ExecFiles(spec_path.parent)
    spec = execution.read(spec_path.name)
    with execution.lock():
        earlier = _result_of(execution, spec)
        if earlier is not None:
            return earlier
        run = _start(spec)
        attempts = (execution.read(ATTEMPTS) or []) + [run.run_id]
        execution.write(ATTEMPTS, attempts)
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="rustorch-stage-") as tmp:
            log, outputs_dir = Path(tmp) / "stage.log", Path(tmp) / OUTPUTS_DIR
            outputs_dir.mkdir()
            error: BaseException | None = None
            outputs: dict[str, Any] = {}
            with _fd_redirect(log) if redirect else contextlib.nullcontext():
                try:
                    outputs = _run_body(spec, run, outputs_dir, log)
                    missing = [k for k in spec["outputs"] if k not in outputs]
                    if missing:
                        raise KeyError(f"stage promised outputs {missing} but did not return them")
                    canonical(outputs)  # JSON-able, or a clear error now
                except BaseException as exc:  # noqa: BLE001 - recorded in the run, re-raised below if fatal
                    error = exc
                    traceback.print_exc()
            if error is not None or log.stat().st_size:  # a silent stage keeps no empty log
                run.log_artifact(log, overwrite=True)
            if error is not None:
                run.finish("failed", error=error)
                result = {"status": "failed", "run_id": run.run_id, "error": f"{type(error).__name__}: {error}",
                          "attempts": len(attempts), "started_at": started, "ended_at": time.time()}
                execution.write(f"failed-{run.run_id}.json", result)
                if not isinstance(error, Exception):
                    raise error
                return result
            files = _digest_files(outputs_dir)
            if files:
                run.log_artifact(outputs_dir, name=OUTPUTS_DIR)
            out_file = Path(tmp) / "outputs.json"
            out_file.write_text(canonical(outputs).decode())
            run.log_artifact(out_file)
        result = {"status": "done", "run_id": run.run_id, "run_dir": str(run.dir), "outputs": outputs,
                  "files": files, "digest": outputs_digest(outputs, files), "attempts": len(attempts),
                  "started_at": started, "ended_at": time.time()}
        pending = f"outputs-{run.run_id}.json"
        execution.write(pending, result)
        run.finish()
        execution.publish(pending, RESULT)
        return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rustorch_tools.pipeline.execute SPEC.json", file=sys.stderr)
        return 2
    result = execute(args[0])
    return 0 if result["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
