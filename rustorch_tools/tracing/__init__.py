"""rustorch_tools.tracing: runs and pipelines exported as Chrome Trace Event JSON
(`rustorch-tools trace RUN_OR_PIPELINE -o trace.json`; see docs/tracing.md)."""

from .chrome import TraceSourceError, pipeline_events, run_events, to_trace

__all__ = ["TraceSourceError", "pipeline_events", "run_events", "to_trace"]
