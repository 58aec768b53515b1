"""PIPELINE.toml -> a checked DAG of stage instances, or one PipelineError listing every problem
(cycles, unknown stages or references, missing or mistyped params, bad matrix) before anything
runs.

    [pipeline]  name = "mnist"  concurrency = 2  on_failure = "stop"  retries = 0
    [vars]      baseline = "20260101-000000-base-0123abcd"
    [stages.NAME]
    python = "module:function"   |  command = ["prog", "arg", ...]  |  train = { ...config... }
    deps = ["other"]             # references to a stage add it too
    params = { ... }             # python: keyword arguments, checked against the signature
    matrix = { lr = [0.5, 1.0], seed = [1, 2] }   # one instance per combination
    outputs = ["key", ...]       # what the stage promises to return
    retries = 1                  # overrides [pipeline].retries
"""

from __future__ import annotations

import importlib
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RustorchToolsError
from ..typecheck import accepts_any_keyword, check_params, parameters
from . import refs

KINDS = ("python", "command", "train")
STAGE_KEYS = {*KINDS, "deps", "params", "matrix", "outputs", "retries", "description"}
PIPELINE_KEYS = {"name", "concurrency", "on_failure", "retries", "runs_dir"}
TRAIN_OUTPUTS = ("run_id", "run_dir", "metrics", "epochs", "steps", "stopped_early", "config")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
CONTEXT_PARAM = "ctx"  # a python entry with this parameter receives the StageContext


MAX_FILE_BYTES = 4 * 1024 * 1024


def read_small_text(path: Path) -> str:
    """A pipeline or config file's text: a regular file (not a FIFO or device, which would
    block or never end) of at most MAX_FILE_BYTES, UTF-8."""
    import os
    import stat

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1).decode("utf-8")


class PipelineError(RustorchToolsError, ValueError):
    """A pipeline that cannot run; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid pipeline:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class Stage:
    name: str
    kind: str
    body: Any  # "module:function", argv list, or the training config
    deps: list[str]
    params: dict[str, Any]
    matrix: dict[str, list[Any]]
    outputs: list[str]
    retries: int

    def instances(self) -> list[Instance]:
        if not self.matrix:
            return [Instance(self.name, self, {})]
        keys = list(self.matrix)
        out = []
        for combo in itertools.product(*(self.matrix[k] for k in keys)):
            point = dict(zip(keys, combo, strict=True))
            label = ",".join(f"{k}={v}" for k, v in point.items())
            out.append(Instance(f"{self.name}[{label}]", self, point))
        return out


@dataclass
class Instance:
    """One execution unit: a stage at one matrix point."""

    id: str
    stage: Stage
    point: dict[str, Any]

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.id).strip("_")[:80]


@dataclass
class Pipeline:
    name: str
    path: Path
    stages: dict[str, Stage]
    order: list[str]  # topological
    vars: dict[str, Any]
    concurrency: int = 2
    on_failure: str = "stop"
    retries: int = 0
    runs_dir: str | None = None
    instances: dict[str, list[Instance]] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.path.parent


def _kind(name: str, table: dict[str, Any], problems: list[str]) -> str | None:
    kinds = [k for k in KINDS if k in table]
    if len(kinds) != 1:
        problems.append(f"stage {name!r}: needs exactly one of {', '.join(KINDS)} (has {kinds or 'none'})")
        return None
    return kinds[0]


def _typed(where: str, value: Any, kind: type | tuple[type, ...], what: str, problems: list[str]) -> bool:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return True
    problems.append(f"{where} must be {what}, got {type(value).__name__} {value!r}")
    return False


def _load_entry(entry: str) -> Any:
    module, _, func = entry.partition(":")
    obj = importlib.import_module(module)
    for part in func.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{entry} is not callable")
    return obj


def _stage(name: str, table: Any, problems: list[str], base: Path) -> Stage | None:
    if not NAME_RE.fullmatch(name):
        problems.append(f"stage name {name!r}: letters, digits, '_' and '-' only, starting with a letter")
        return None
    if not isinstance(table, dict):
        problems.append(f"stage {name!r} must be a table")
        return None
    for key in sorted(set(table) - STAGE_KEYS):
        problems.append(f"stage {name!r}: unknown key {key!r} (known: {', '.join(sorted(STAGE_KEYS))})")
    kind = _kind(name, table, problems)
    deps, params = table.get("deps", []), table.get("params", {})
    matrix, outputs, retries = table.get("matrix", {}), table.get("outputs", []), table.get("retries", -1)
    ok = _typed(f"stage {name!r}: deps", deps, list, "a list of stage names", problems)
    ok &= _typed(f"stage {name!r}: params", params, dict, "a table", problems)
    ok &= _typed(f"stage {name!r}: matrix", matrix, dict, "a table of lists", problems)
    ok &= _typed(f"stage {name!r}: outputs", outputs, list, "a list of names", problems)
    ok &= _typed(f"stage {name!r}: retries", retries, int, "an int", problems)
    if not ok or kind is None:
        return None
    if not all(isinstance(d, str) for d in deps) or not all(isinstance(o, str) for o in outputs):
        problems.append(f"stage {name!r}: deps and outputs must hold strings")
        return None
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            problems.append(f"stage {name!r}: matrix.{key} must be a non-empty list")
            return None
        if any(isinstance(v, dict | list) for v in values):
            problems.append(f"stage {name!r}: matrix.{key} values must be scalars")
            return None
    body = table[kind]
    if kind == "python":
        if not _typed(f"stage {name!r}: python", body, str, "'module:function'", problems):
            return None
        if ":" not in body:
            problems.append(f"stage {name!r}: python = {body!r} must be 'module:function'")
            return None
    elif kind == "command":
        if isinstance(body, str):
            import shlex

            body = shlex.split(body)
        if not isinstance(body, list) or not body or not all(isinstance(a, str) for a in body):
            problems.append(f"stage {name!r}: command must be a non-empty list of strings (or a string)")
            return None
    else:
        if isinstance(body, str):  # a TOML file beside the pipeline
            path = (base / body)
            try:
                body = tomllib.loads(read_small_text(path))
            except (OSError, ValueError, RecursionError) as exc:
                problems.append(f"stage {name!r}: train config {body!r}: {exc}")
                return None
        if not isinstance(body, dict):
            problems.append(f"stage {name!r}: train must be a table or a TOML file name")
            return None
        if params:
            problems.append(f"stage {name!r}: a train stage takes its settings in `train`, not params")
            return None
    if kind == "train":
        bad = [o for o in outputs if o not in TRAIN_OUTPUTS]
        if bad:
            problems.append(f"stage {name!r}: a train stage's outputs are {', '.join(TRAIN_OUTPUTS)}; not {bad}")
            return None
        outputs = outputs or list(TRAIN_OUTPUTS)
    return Stage(name, kind, body, list(deps), params, matrix, list(outputs), retries)


def _check_refs(p: Pipeline, problems: list[str]) -> None:
    for stage in p.stages.values():
        for path in refs.find([stage.body, stage.params]):
            head, _, rest = path.partition(".")
            if head == "matrix":
                if rest not in stage.matrix:
                    problems.append(f"stage {stage.name!r}: ${{{path}}} but the stage has no matrix key {rest!r}")
            elif head == "vars":
                if rest not in p.vars:
                    problems.append(f"stage {stage.name!r}: ${{{path}}} but [vars] has no {rest!r}")
            elif head == "pipeline":
                if rest not in ("name", "dir", "runs_dir", "python"):
                    problems.append(f"stage {stage.name!r}: ${{{path}}}: pipeline has name, dir, runs_dir, python")
            elif head == "self":
                if rest != "outputs_dir":
                    problems.append(f"stage {stage.name!r}: ${{{path}}}: self has outputs_dir only")
            elif head not in p.stages:
                problems.append(f"stage {stage.name!r}: ${{{path}}} names unknown stage {head!r}")
            else:
                field_, _, key = rest.partition(".")
                up = p.stages[head]
                if field_ not in refs.STAGE_FIELDS or (field_ == "outputs") != bool(key):
                    problems.append(f"stage {stage.name!r}: ${{{path}}}: a stage reference is "
                                    f"<stage>.run_id, <stage>.run_dir or <stage>.outputs.<key>")
                elif field_ == "outputs" and key not in up.outputs:
                    problems.append(f"stage {stage.name!r}: ${{{path}}}: stage {head!r} declares no "
                                    f"output {key!r} (declared: {', '.join(up.outputs) or 'none'})")
                elif head not in stage.deps:
                    stage.deps.append(head)  # a reference is a dependency


def _toposort(p: Pipeline, problems: list[str]) -> list[str]:
    for stage in p.stages.values():
        for d in stage.deps:
            if d not in p.stages:
                problems.append(f"stage {stage.name!r}: depends on unknown stage {d!r}")
    if problems:
        return []
    state: dict[str, int] = {}
    order: list[str] = []

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = path[path.index(n):] + [n]
            problems.append("cycle: " + " -> ".join(cycle))
            return
        state[n] = 1
        for d in p.stages[n].deps:
            visit(d, path + [n])
        state[n] = 2
        order.append(n)

    for n in p.stages:
        visit(n, [])
    return order


def _static(value: Any, point: dict[str, Any], variables: dict[str, Any]) -> Any:
    """`value` with matrix/vars references resolved and upstream ones left as _LATER."""
    def lookup(path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "matrix":
            return point[rest]
        if head == "vars":
            return variables[rest]
        return _LATER

    return refs.substitute(value, lookup)


def _check_python_params(p: Pipeline, problems: list[str]) -> None:
    for stage in p.stages.values():
        if stage.kind != "python":
            continue
        try:
            fn = _load_entry(stage.body)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            problems.append(f"stage {stage.name!r}: cannot load {stage.body}: {exc}")
            continue
        spec = parameters(fn, skip=(CONTEXT_PARAM,))
        for inst in stage.instances():
            given = _static(stage.params, inst.point, p.vars)
            # A value an upstream stage supplies is type-checked when the stage runs.
            spec_now = {k: ((object, d) if _contains_later(given.get(k)) else (a, d)) for k, (a, d) in spec.items()}
            for msg in check_params(f"stage {stage.name!r} ({stage.body})", given, spec_now,
                                    open_ended=accepts_any_keyword(fn)):
                if msg not in problems:
                    problems.append(msg)


class _Later:
    """Marks a value known only once an upstream stage has run."""


_LATER = _Later()


def _contains_later(v: Any) -> bool:
    if v is _LATER:
        return True
    if isinstance(v, list):
        return any(_contains_later(x) for x in v)
    if isinstance(v, dict):
        return any(_contains_later(x) for x in v.values())
    return False


def _check_train(p: Pipeline, problems: list[str]) -> None:
    for stage in p.stages.values():
        if stage.kind != "train":
            continue
        from ..train.config import check  # imports torch: only for pipelines that train

        for inst in stage.instances():
            cfg = _static(stage.body, inst.point, p.vars)
            if _contains_later(cfg):
                continue  # upstream values: checked when it runs
            for msg in check(cfg):
                text = f"stage {stage.name!r}: train: {msg}"
                if text not in problems:
                    problems.append(text)


VAR_REFS = ("pipeline.name", "pipeline.dir")


def _expand_vars(variables: dict[str, Any], name: Any, directory: Path,
                 problems: list[str]) -> dict[str, Any]:
    """[vars] (after --var overrides) with `${pipeline.dir}` (the pipeline file's folder) and
    `${pipeline.name}` substituted, so that e.g. `data = "${pipeline.dir}/../data"` names a
    path relative to the pipeline file. Other references are known only per stage."""
    known = {"pipeline.name": name, "pipeline.dir": str(directory)}
    out = {}
    for key, value in variables.items():
        bad = [r for r in refs.find(value) if r not in VAR_REFS]
        if bad:
            problems.append(f"[vars] {key}: ${{{bad[0]}}}: a var may reference "
                            f"{', '.join('${' + r + '}' for r in VAR_REFS)} only")
            out[key] = value
            continue
        out[key] = refs.substitute(value, known.__getitem__)
    return out


def parse(path: str | Path, overrides: dict[str, Any] | None = None) -> Pipeline:
    """Read and check a pipeline file; PipelineError lists every problem. `overrides` replace
    [vars] entries (the CLI's --var KEY=VALUE); each must name an existing one."""
    path = Path(path)
    try:
        doc = tomllib.loads(read_small_text(path))
    except OSError as exc:
        raise PipelineError([f"{path}: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError([f"{path}: TOML syntax: {exc}"]) from None
    except (ValueError, RecursionError) as exc:
        raise PipelineError([f"{path}: {exc}"]) from None
    problems: list[str] = []
    head = doc.get("pipeline", {})
    if not isinstance(head, dict):
        raise PipelineError(["[pipeline] must be a table"])
    for key in sorted(set(doc) - {"pipeline", "vars", "stages"}):
        problems.append(f"unknown top-level table {key!r} (known: pipeline, vars, stages)")
    for key in sorted(set(head) - PIPELINE_KEYS):
        problems.append(f"[pipeline]: unknown key {key!r} (known: {', '.join(sorted(PIPELINE_KEYS))})")
    name = head.get("name", path.stem)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        problems.append(f"[pipeline]: name {name!r} must be letters, digits, '_' or '-'")
    concurrency, on_failure, retries = head.get("concurrency", 2), head.get("on_failure", "stop"), head.get("retries", 0)
    if _typed("[pipeline]: concurrency", concurrency, int, "an int >= 1", problems) and concurrency < 1:
        problems.append("[pipeline]: concurrency must be >= 1")
    if on_failure not in ("stop", "continue"):
        problems.append(f"[pipeline]: on_failure must be 'stop' or 'continue', got {on_failure!r}")
    if _typed("[pipeline]: retries", retries, int, "an int >= 0", problems) and retries < 0:
        problems.append("[pipeline]: retries must be >= 0")
    runs_dir = head.get("runs_dir")
    if runs_dir is not None:
        _typed("[pipeline]: runs_dir", runs_dir, str, "a path", problems)
    variables = doc.get("vars", {})
    if not isinstance(variables, dict):
        problems.append("[vars] must be a table")
        variables = {}
    for key, value in (overrides or {}).items():
        if key not in variables:
            problems.append(f"--var {key}: [vars] has no {key!r} (known: {', '.join(sorted(variables)) or 'none'})")
        elif type(value) is not type(variables[key]) and not (
                isinstance(value, int | float) and isinstance(variables[key], int | float)):
            problems.append(f"--var {key}: must be {type(variables[key]).__name__} like [vars], got {value!r}")
        else:
            variables[key] = value
    variables = _expand_vars(variables, name, path.resolve().parent, problems)
    tables = doc.get("stages")
    if not isinstance(tables, dict) or not tables:
        problems.append("no stages: add [stages.NAME] tables")
        raise PipelineError(problems)
    stages: dict[str, Stage] = {}
    for sname, table in tables.items():
        stage = _stage(sname, table, problems, path.parent)
        if stage is not None:
            if stage.retries < 0:
                stage.retries = retries if isinstance(retries, int) else 0
            stages[sname] = stage
    if problems:
        raise PipelineError(problems)
    p = Pipeline(name, path.resolve(), stages, [], variables, concurrency, on_failure, retries, runs_dir)
    _check_refs(p, problems)
    p.order = _toposort(p, problems)
    if not problems:
        _check_python_params(p, problems)
        _check_train(p, problems)
    if problems:
        raise PipelineError(problems)
    p.instances = {n: p.stages[n].instances() for n in p.order}
    return p
