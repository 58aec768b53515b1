"""CLI commands of rustorch_tools.governance (added to the group in rustorch_tools.cli):
`validate`, `quarantine`, `release`, `repair`, `audit verify`.

Exit codes: 0 clean, 1 findings at error level (or: a run still has errors, a repair failed,
the audit chain is broken), 2 usage or I/O error.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidNameError, RunNotFoundError, RustorchToolsError
from ..repro.signing import load_private, load_public
from ..store import atomic, audit, layout
from ..store.runstore import RunStore
from ..store.select import select_run
from . import audit_signing
from .findings import CODES, Finding
from .incremental import validate_incremental
from .quarantine import ReleaseError, quarantine_runs, release_run
from .repair import repair_runs
from .report import human_table, render_html, render_markdown, to_json
from .validate import validate_runs

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

RUNS_DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
JOBS = click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                    help="Worker processes checking runs (default: CPU count).")
JSON = click.option("--json", "as_json", is_flag=True,
                    help="Print one JSON document (stable format, docs/governance.md).")


def _io_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """OSError / tool errors -> a one-line message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (OSError, RustorchToolsError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def _emit_json(doc: dict) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False))


def _remediation(findings: list[Finding]) -> str:
    codes = sorted({f.code for f in findings})
    if not codes:
        return ""
    lines = ["", "Remediation:"]
    lines += [f"  {c} {CODES[c].title}: {CODES[c].remediation}" for c in codes]
    return "\n".join(lines) + "\n"


def _audit_or_warn(runs_dir: Path, command: str, details: dict) -> None:
    try:
        RunStore(runs_dir).audit_append(command, details)
    except (OSError, RustorchToolsError) as e:  # a read-only RUNS_DIR can still be validated
        click.echo(f"warning: could not write the audit entry: {e}", err=True)


@click.command("validate")
@click.argument("runs_dir", type=RUNS_DIR)
@JSON
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a compliance report: FILE.html or FILE.md.")
@click.option("--strict", is_flag=True, help="Warnings count as errors for the exit code.")
@click.option("--incremental", is_flag=True,
              help="Re-check only runs changed since the last incremental pass (cache in "
                   ".index/), and append the pass to .audit/validation-history.jsonl.")
@JOBS
@_io_errors
def validate_cmd(runs_dir: Path, as_json: bool, report_path: Path | None, strict: bool,
                 incremental: bool, jobs: int | None) -> None:
    """Check every run in RUNS_DIR against the runs/ format and print the findings.

    Read-only apart from one audit entry (and, with --incremental, the cache and the
    history). Exit 0 clean, 1 errors (with --strict: warnings too), 2 usage or I/O error.
    """
    if report_path is not None and report_path.suffix.lower() not in (".html", ".htm", ".md"):
        raise click.UsageError("--report must end in .html or .md")
    if incremental:
        passed = validate_incremental(runs_dir, jobs=jobs)
        report = passed.report
        click.echo(f"incremental: {len(passed.checked)} runs checked, {passed.reused} "
                   f"unchanged, {len(passed.new_errors)} newly with errors", err=True)
    else:
        report = validate_runs(runs_dir, jobs=jobs)
    chain = RunStore(runs_dir).audit_verify()
    if not chain.ok:
        report.findings.append(Finding(
            "RT602", f"{len(chain.problems)} problems, first: {chain.problems[0]['problem']}",
            None, f"{audit.AUDIT_DIR}/{audit.LOG_NAME}"))
    code = report.exit_code(strict)
    _audit_or_warn(runs_dir, "validate", {"summary": report.summary(), "strict": strict,
                                          "exit_code": code, "runs_with_errors": sorted(
                                              r.folder for r in report.runs if r.has_errors)})
    if report_path is not None:
        text = (render_markdown if report_path.suffix.lower() == ".md" else render_html)(
            report, chain, code)
        atomic.write_output(report_path, text.encode("utf-8"))  # replaces a link, never follows it
    if as_json:
        _emit_json(to_json(report, chain, code))
    else:
        findings = list(report.all_findings())
        click.echo(human_table(findings), nl=False)
        click.echo(_remediation(findings), nl=False)
        s = report.summary()
        click.echo(f"\n{s['runs']} runs: {s['runs_with_errors']} with errors; {s['errors']} "
                   f"errors, {s['warnings']} warnings, {s['infos']} notes; "
                   f"{s['quarantined']} in quarantine; audit chain "
                   f"{'ok' if chain.ok else 'BROKEN'}.")
        if report_path is not None:
            click.echo(f"Report written to {report_path}")
    sys.exit(code)


@click.command("quarantine")
@click.argument("runs_dir", type=RUNS_DIR)
@click.option("--dry-run", is_flag=True, help="Show what would move; change nothing.")
@JSON
@JOBS
@_io_errors
def quarantine_cmd(runs_dir: Path, dry_run: bool, as_json: bool, jobs: int | None) -> None:
    """Move runs with errors to RUNS_DIR/.quarantine/<run_id>/ (atomic rename, never a copy).

    Live runs (fresh heartbeat) are never moved. Exit 0 when no run with errors is left in
    RUNS_DIR, 1 when some is (live, or with --dry-run), 2 on usage or I/O error.
    """
    out = quarantine_runs(runs_dir, dry_run=dry_run, jobs=jobs)
    left = bool(out.skipped) or (dry_run and bool(out.moved))
    if as_json:
        _emit_json({**out.to_dict(), "exit_code": int(left)})
    else:
        verb = "would move" if dry_run else "moved"
        for m in out.moved:
            click.echo(f"{verb} {m.source} -> {m.target}  ({', '.join(m.codes)})")
        for s in out.skipped:
            click.echo(f"kept {s['run_id']}: {s['reason']}  ({', '.join(s['codes'])})")
        if not out.moved and not out.skipped:
            click.echo("No run with errors.")
    sys.exit(int(left))


@click.command("release")
@click.argument("run_id")
@click.option("--runs-dir", type=RUNS_DIR, required=True, help="The RUNS_DIR of the run.")
@JSON
@_io_errors
def release_cmd(run_id: str, runs_dir: Path, as_json: bool) -> None:
    """Move RUN_ID (an id, a unique id prefix or a run name in RUNS_DIR/.quarantine) back from
    quarantine once it validates without errors.

    Exit 0 released, 1 it still has errors (it stays in quarantine), 2 usage or I/O error
    (not in quarantine, a run with that id already in RUNS_DIR).
    """
    qdir = RunStore(runs_dir).quarantine_dir
    try:
        run_id = select_run(qdir, run_id).name
    except (RunNotFoundError, InvalidNameError) as e:
        raise click.UsageError(str(e).replace(f" in {qdir}", f" in quarantine ({qdir})")) from e
    try:
        out = release_run(runs_dir, run_id)
    except ReleaseError as e:
        raise click.UsageError(str(e)) from e
    if as_json:
        _emit_json({**out.to_dict(), "exit_code": int(not out.released)})
    elif out.released:
        click.echo(f"released {run_id} -> {runs_dir / run_id}")
    else:
        findings = out.result.findings if out.result else []
        click.echo(f"{run_id} stays in quarantine: {out.reason}")
        click.echo(human_table(findings), nl=False)
        click.echo(_remediation(findings), nl=False)
    sys.exit(0 if out.released else 1)


@click.command("repair")
@click.argument("runs_dir", type=RUNS_DIR)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@JSON
@JOBS
@_io_errors
def repair_cmd(runs_dir: Path, dry_run: bool, as_json: bool, jobs: int | None) -> None:
    """Fix what is recoverable in runs that are not live, deleting nothing: torn lines (last
    or mid-file) and leftover temp files moved into .orphan files, stale runs marked crashed,
    old schema versions migrated, summaries regenerated, missing manifests rebuilt
    (unverified); in crashed runs, untracked files recorded (unverified) and rotated-away
    checkpoints forgotten. Every change is audited with before/after SHA-256.

    Exit 0 when every repair succeeded (or the plan was printed), 1 when one failed, 2 on
    usage or I/O error.
    """
    out = repair_runs(runs_dir, dry_run=dry_run, jobs=jobs)
    code = int(bool(out.failed))
    if as_json:
        _emit_json({**out.to_dict(), "exit_code": code})
    else:
        if not out.actions:
            click.echo("Nothing to repair.")
        for a in out.actions:
            state = "plan" if dry_run else ("FAILED" if a.error else "done")
            extra = f"  ({a.error})" if a.error else ""
            click.echo(f"{state:6} {a.action:18} {a.file}{extra}")
    sys.exit(code)


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail RUNS_DIR/.audit/log.jsonl."""


@audit_group.command("verify")
@click.argument("runs_dir", type=RUNS_DIR)
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also require the signed heads (`audit sign`) to verify with this Ed25519 "
                   "public key and to be in the log: detects truncated or forged chains.")
@JSON
@_io_errors
def audit_verify_cmd(runs_dir: Path, pubkey: Path | None, as_json: bool) -> None:
    """Check the audit chain: detects edited, removed, inserted or reordered entries.

    Exit 0 intact (or no log yet, without --pubkey), 1 broken, 2 usage or I/O error.
    """
    status = RunStore(runs_dir).audit_verify()
    if pubkey is not None:
        signed, _ = audit_signing.verify_signed(runs_dir, load_public(pubkey))
        status.problems += signed
        status.ok = status.ok and not signed
    if as_json:
        _emit_json({**status.to_dict(), "exit_code": int(not status.ok)})
    elif not status.present and status.ok:
        click.echo("No audit log.")
    elif status.ok:
        click.echo(f"Audit chain intact: {status.entries} entries.")
    else:
        click.echo(f"Audit chain BROKEN ({status.entries} entries):")
        for p in status.problems:
            where = f"line {p['line']}" if p.get("line") else "log"
            click.echo(f"  {where}: {p['problem']}")
    sys.exit(0 if status.ok else 1)


@audit_group.command("sign")
@click.argument("runs_dir", type=RUNS_DIR)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ed25519 private key (PEM, from `bundle keygen`).")
@JSON
@_io_errors
def audit_sign_cmd(runs_dir: Path, key: Path, as_json: bool) -> None:
    """Sign the current head of the audit chain into .audit/signed-heads.jsonl.

    Exit 0 signed, 1 the chain is broken or absent (not signed), 2 usage or I/O error.
    """
    try:
        line = audit_signing.sign_head(runs_dir, load_private(key))
    except audit_signing.AuditSignError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FINDINGS)
    if as_json:
        _emit_json(line)
    else:
        click.echo(f"signed audit entry {line['seq']} ({line['hash'][:16]}…) with key {line['key_id']}")


def _pass_line(doc: dict[str, Any]) -> str:
    """One readable line per watch pass (the JSON line's main fields)."""
    s = doc.get("summary") or {}
    parts = [f"{k} {s[k]}" for k in ("runs", "runs_with_errors", "errors", "warnings") if k in s]
    for key in ("new_errors", "quarantined"):
        if doc.get(key):
            parts.append(f"{key.replace('_', ' ')}: " + ", ".join(map(layout.printable, doc[key])))
    for hook in doc.get("hooks") or []:
        parts.append(f"hook {'ok' if hook.get('ok') else 'FAILED'}")
    when = doc.get("time")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if isinstance(when, int | float) else "-"
    return f"{stamp}  " + "; ".join(str(p) for p in parts)


@click.command("watch")
@click.argument("runs_dir", type=RUNS_DIR)
@click.option("--every", "every", default="10m", show_default=True,
              help="Time between passes: 90s, 10m, 1h, 1d.")
@click.option("--quarantine", "do_quarantine", is_flag=True,
              help="Quarantine runs with errors when a pass finds new ones.")
@click.option("--hook", "hooks", multiple=True,
              help="Command run (no shell; payload JSON on stdin) when a pass finds new errors.")
@click.option("--webhook", "webhooks", multiple=True,
              help="http(s) URL POSTed the payload when a pass finds new errors.")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron / systemd timers).")
@JOBS
@click.option("--json", "as_json", is_flag=True,
              help="Print each pass as one JSON line (docs/governance.md) instead of a text line.")
@_io_errors
def watch_cmd(runs_dir: Path, every: str, do_quarantine: bool, hooks: tuple[str, ...],
              webhooks: tuple[str, ...], once: bool, jobs: int | None, as_json: bool) -> None:
    """Validate RUNS_DIR incrementally every --every, in the foreground, until SIGTERM/SIGINT.

    Each pass re-checks only changed runs and appends its findings to
    .audit/validation-history.jsonl; on new errors it can quarantine and fire hooks. Exit
    0 after a clean shutdown (with --once: 0 clean, 1 errors), 2 usage or I/O error.
    """
    from .watch import parse_interval, run_pass, serve

    try:
        every_s = parse_interval(every)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    last: dict[str, int] = {}

    def one() -> None:
        out, extra = run_pass(runs_dir, quarantine=do_quarantine, hooks=list(hooks),
                              webhooks=list(webhooks), jobs=jobs,
                              mode="once" if once else "watch")
        s = out.report.summary()
        last["code"] = out.report.exit_code()
        doc = {"time": out.report.checked_at, **out.to_dict(), **extra, "summary": s}
        click.echo(json.dumps(doc, sort_keys=True) if as_json else _pass_line(doc))

    serve(runs_dir, every_s, one, max_passes=1 if once else None)
    sys.exit(last.get("code", 0) if once else 0)


COMMANDS: list[click.Command] = [validate_cmd, quarantine_cmd, release_cmd, repair_cmd,
                                 audit_group, watch_cmd]
