"""Finding codes, severities and the `Finding` record every governance check produces.

Codes are stable: a code is never reused for another meaning, and `docs/governance.md` lists
them all. Ranges: RT1xx run.json and schema, RT2xx JSONL files (metrics, events), RT3xx
manifest and digests, RT4xx status and summary, RT5xx tree (lineage, duplicates, unknown or
unsafe entries), RT6xx governance state (quarantine, audit), RT9xx I/O.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Severity(enum.IntEnum):
    """Ordered so that `max()` picks the worst."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str
    remediation: str
    repairable: bool = False


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_TABLE: tuple[CodeInfo, ...] = (
    # run.json and schema
    CodeInfo("RT101", _E, "run.json is missing",
             "Restore run.json from a backup; without it the run cannot be identified. "
             "`quarantine` moves the folder aside."),
    CodeInfo("RT102", _E, "run.json is not valid JSON",
             "Restore run.json from a backup or rewrite it by hand from events.jsonl."),
    CodeInfo("RT103", _E, "run.json violates the run schema",
             "Fix the listed fields (see rustorch_tools/schemas/run.v1.json)."),
    CodeInfo("RT104", _W, "run.json uses an older schema version (migrated in memory)",
             "Run `rustorch-tools repair RUNS_DIR` to migrate it on disk.", True),
    CodeInfo("RT105", _E, "run.json has a schema version newer than this tool",
             "Upgrade rustorch-tools; this version cannot read the run."),
    CodeInfo("RT106", _E, "run_id in run.json differs from the folder name",
             "Rename the folder to the run_id (or fix run_id) so that lookups find the run."),
    CodeInfo("RT107", _E, "folder name is not a valid run id",
             "Rename the folder to match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}."),
    # JSONL files
    CodeInfo("RT201", _E, "corrupt line (bad JSON or CRC mismatch)",
             "The line was altered after it was written; restore the file from a backup or "
             "`quarantine` the run."),
    CodeInfo("RT202", _E, "torn last line (no trailing newline, run not live)",
             "Run `rustorch-tools repair` to cut the torn bytes into a .orphan file.", True),
    CodeInfo("RT203", _E, "metric steps go backwards",
             "Rows were appended out of order (two writers on one run?); check the writer, "
             "restore from a backup or `quarantine` the run."),
    CodeInfo("RT204", _E, "non-finite value not encoded per the format",
             "Write non-finite values through the store (string + `_nonfinite` list)."),
    CodeInfo("RT205", _W, "metric has non-finite values (nan/inf)",
             "Training diverged at the listed step; check learning rate and inputs."),
    CodeInfo("RT206", _E, "row violates its schema (wrong types or names)",
             "Rows must be written through the store's logging API."),
    CodeInfo("RT207", _W, "metrics.jsonl or events.jsonl is missing",
             "The run never logged; if it should have, check the writer."),
    CodeInfo("RT208", _I, "last line is being written (live run)",
             "Nothing to do: the writer is appending."),
    CodeInfo("RT209", _E, "torn line in the middle (a writer died mid-line)",
             "Run `rustorch-tools repair` to move the torn line into a .orphan file.", True),
    CodeInfo("RT210", _E, "data lost: a JSONL file is missing or shorter than when the run ended",
             "Rows were deleted after the run ended (manifest.json `logs` records what it "
             "held); restore the file from a backup or `quarantine` the run. `repair` cannot "
             "recover lost rows."),
    CodeInfo("RT211", _E, "data altered: a JSONL file differs from what the run held when it ended",
             "Rows were edited after the run ended; restore the file from a backup or "
             "`quarantine` the run."),
    CodeInfo("RT212", _E, "summary records more than metrics.jsonl holds (rows lost)",
             "run.json's summary names a later step than the last metric row: rows were "
             "removed. Restore metrics.jsonl from a backup or `quarantine` the run; `repair` "
             "keeps the summary as evidence."),
    # manifest and digests
    CodeInfo("RT301", _E, "manifest.json is missing while checkpoints/artifacts exist",
             "Run `rustorch-tools repair` to rebuild it from the files present (unverified).",
             True),
    CodeInfo("RT302", _E, "manifest.json is unreadable or violates its schema",
             "Restore manifest.json from a backup."),
    CodeInfo("RT303", _E, "file digest or size differs from the manifest",
             "The file changed after it was recorded; restore it from a backup."),
    CodeInfo("RT304", _E, "file listed in the manifest is missing",
             "Restore the file from a backup (in a crashed run, `repair` forgets a checkpoint "
             "that rotation removed)."),
    CodeInfo("RT305", _W, "file present but not listed in the manifest",
             "Files must be added through the store; in a crashed run `repair` records it "
             "`verified: false`; elsewhere it cannot vouch for it: add it with the store API."),
    CodeInfo("RT306", _I, "manifest entries are unverified (rebuilt by repair)",
             "Compare the files with a trusted copy, then re-add them through the store."),
    # status and summary
    CodeInfo("RT401", _E, "status is running but the heartbeat is stale (crashed)",
             "Run `rustorch-tools repair` to mark the run crashed.", True),
    CodeInfo("RT402", _W, "ended run has no ended_at",
             "The writer did not close the run cleanly."),
    CodeInfo("RT403", _W, "failed run has no error record",
             "The writer did not record why the run failed."),
    CodeInfo("RT404", _W, "summary differs from the last metric row",
             "Run `rustorch-tools repair` to regenerate the summary.", True),
    # tree
    CodeInfo("RT501", _E, "parent run does not exist",
             "Restore the parent run or clear `parent` in run.json."),
    CodeInfo("RT502", _E, "lineage has a cycle",
             "Fix `parent` in the listed runs so that lineage ends at a root run."),
    CodeInfo("RT503", _E, "duplicate run id",
             "Two folders claim the same run id; rename or quarantine one of them."),
    CodeInfo("RT504", _W, "unknown file in run folder",
             "Move the file out of the run folder if it does not belong to the run (`repair` "
             "sets leftover temp files aside as .orphan files)."),
    CodeInfo("RT505", _W, "unknown entry at the top of RUNS_DIR",
             "Only run folders and reserved dot-folders belong in RUNS_DIR."),
    CodeInfo("RT506", _E, "symbolic link (or hard-linked file) inside RUNS_DIR",
             "Replace the link by the file it points to; links can escape RUNS_DIR and are "
             "never followed."),
    CodeInfo("RT507", _I, "parent run is in quarantine",
             "Release the parent once it validates."),
    # governance state
    CodeInfo("RT601", _W, "quarantined run has no readable QUARANTINE.json",
             "The quarantine was interrupted; the run folder is intact."),
    CodeInfo("RT602", _E, "audit log failed verification",
             "The audit trail was edited; compare with a backup of RUNS_DIR/.audit."),
    # I/O
    CodeInfo("RT901", _E, "file cannot be read",
             "Check permissions and the disk; the file may be a special file or unreadable."),
)

CODES: dict[str, CodeInfo] = {info.code: info for info in _TABLE}


@dataclass(frozen=True)
class Finding:
    """One problem found in RUNS_DIR. `file` is relative to RUNS_DIR, `line` is 1-based."""

    code: str
    message: str
    run_id: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def info(self) -> CodeInfo:
        return CODES[self.code]

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    def to_dict(self) -> dict:
        info = CODES[self.code]
        out = asdict(self)
        out.update(severity=str(info.severity), title=info.title,
                   remediation=info.remediation, repairable=info.repairable)
        return out


def worst(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    out = {str(s): 0 for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
    for f in findings:
        out[str(f.severity)] += 1
    return out
