"""rustorch_tools.pipeline: multi-stage pipelines whose every stage execution is a run.

Modules: `spec` (parse and check PIPELINE.toml), `refs` (`${...}` references), `cache`
(content-addressed keys), `driver` (plan/run/status, state in RUNS_DIR/.pipelines/),
`execute` (one execution, idempotent), `executors` (local process pool, Dask), `runview`
(the read-only questions asked of RUNS_DIR), `builtins` (stage functions of the examples),
`cli`. See docs/pipelines.md.
"""

from .spec import Pipeline, PipelineError, parse

__all__ = ["Pipeline", "PipelineError", "parse"]
