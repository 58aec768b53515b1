"""rustorch_tools.store: the only code that reads or writes files under RUNS_DIR.

Modules: `layout` (names and paths), `atomic` (crash-safe writes and locked appends),
`jsonl` (self-checking lines), `schema` (JSON Schemas and migration), `runs` (run.json,
metrics, events, locks), `manifest` (SHA-256 of checkpoints/ and artifacts/).
The on-disk format is docs/runs-format.md.
"""
