"""rustorch_tools.repro: reproducibility of runs.

Modules: `identity` (code identity and environment lock), `record` (what an entry point writes
into its run so that it can be replayed), `bundle` (the deterministic `.rtb` config bundle),
`signing` (Ed25519 keys and detached signatures), `compare` (step-by-step metric comparison),
`replay` (re-execute a recorded run and compare), `cli` (`bundle ...`, `replay`).
The formats are described in docs/reproducibility.md.
"""
