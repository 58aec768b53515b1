"""Outputs of `validate`: the stable `--json` document, the human table, and the compliance
report (HTML via Jinja2 with autoescaping, self-contained; or Markdown)."""

from __future__ import annotations

import datetime as _dt
from importlib import metadata
from pathlib import Path

import jinja2
from tabulate import tabulate

from ..store.audit import AuditStatus
from ..store.layout import printable
from .findings import CODES, Finding
from .validate import ValidationReport

JSON_FORMAT = "rustorch-tools/validate"
JSON_VERSION = 1
MAX_RUNS_IN_REPORT = 2000  # a report a person reads; --json has everything


def _version() -> str:
    try:
        return metadata.version("rustorch")
    except metadata.PackageNotFoundError:
        return "unknown"


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def to_json(report: ValidationReport, audit: AuditStatus, exit_code: int) -> dict:
    """The `--json` document of `validate` (documented in docs/governance.md)."""
    return {
        "format": JSON_FORMAT, "version": JSON_VERSION,
        "runs_dir": report.runs_dir, "checked_at": report.checked_at,
        "exit_code": exit_code,
        "summary": report.summary(),
        "findings": [f.to_dict() for f in report.findings],
        "runs": [r.to_dict() for r in report.runs],
        "quarantine": [q.to_dict() for q in report.quarantine],
        "audit": audit.to_dict(),
    }


def _code_counts(report: ValidationReport) -> list[dict]:
    counts: dict[str, int] = {}
    for f in report.all_findings():
        counts[f.code] = counts.get(f.code, 0) + 1
    return [{"code": c, "count": n, "severity": str(CODES[c].severity),
             "title": CODES[c].title} for c, n in sorted(counts.items())]


def _context(report: ValidationReport, audit: AuditStatus, exit_code: int) -> dict:
    runs = [r for r in report.runs if r.findings]
    runs.sort(key=lambda r: (-int(r.worst or 0), r.folder))
    return {
        "runs_dir": report.runs_dir, "checked_at": _iso(report.checked_at),
        "version": _version(), "exit_code": exit_code, "summary": report.summary(),
        "codes": _code_counts(report),
        "tree_findings": [f.to_dict() for f in report.findings],
        "runs": [{"folder": r.folder, "status": r.status, "live": r.live,
                  "worst": str(r.worst), "findings": [f.to_dict() for f in r.findings]}
                 for r in runs[:MAX_RUNS_IN_REPORT]],
        "runs_omitted": max(0, len(runs) - MAX_RUNS_IN_REPORT),
        "quarantine": [{**q.to_dict(), "quarantined_at": _iso(q.quarantined_at)}
                       for q in report.quarantine],
        "audit": audit.to_dict(),
    }


def render_html(report: ValidationReport, audit: AuditStatus, exit_code: int) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    return env.get_template("governance_report.html.j2").render(
        **_context(report, audit, exit_code))


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-.!|~"})


def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell: specials escaped, no line breaks, no HTML."""
    s = "" if text is None else str(text)
    return " ".join(s.split()).translate(_MD_SPECIAL).replace("&", "&amp;")


def _md_findings(findings: list[dict]) -> list[str]:
    lines = ["| Severity | Code | File | Line | Finding | Remediation |",
             "|---|---|---|---|---|---|"]
    for f in findings:
        lines.append("| " + " | ".join(md_escape(x) for x in (
            f["severity"], f["code"], f["file"], f["line"], f"{f['title']}: {f['message']}",
            f["remediation"])) + " |")
    return lines


def render_markdown(report: ValidationReport, audit: AuditStatus, exit_code: int) -> str:
    ctx = _context(report, audit, exit_code)
    s = ctx["summary"]
    out = ["# Compliance report", "",
           f"RUNS_DIR `{md_escape(ctx['runs_dir'])}`, checked {ctx['checked_at']}, "
           f"rustorch-tools {md_escape(ctx['version'])}. Verdict: "
           + ("**clean**" if exit_code == 0 else "**findings at error level**"), "",
           "## Summary", "", "| Runs | With errors | Errors | Warnings | Notes | Live | "
           "Migrated | Quarantined |", "|---|---|---|---|---|---|---|---|",
           f"| {s['runs']} | {s['runs_with_errors']} | {s['errors']} | {s['warnings']} | "
           f"{s['infos']} | {s['runs_live']} | {s['runs_migrated']} | {s['quarantined']} |", ""]
    if ctx["codes"]:
        out += ["| Code | Severity | Count | Meaning |", "|---|---|---|---|"]
        out += [f"| {c['code']} | {c['severity']} | {c['count']} | {md_escape(c['title'])} |"
                for c in ctx["codes"]]
        out.append("")
    out += ["## Findings by run", ""]
    if not ctx["runs"] and not ctx["tree_findings"]:
        out += ["No findings.", ""]
    if ctx["tree_findings"]:
        out += ["### RUNS_DIR itself", "", *_md_findings(ctx["tree_findings"]), ""]
    for r in ctx["runs"]:
        live = " (live)" if r["live"] else ""
        out += [f"### {md_escape(r['folder'])}: status {md_escape(r['status'] or 'unknown')}"
                f"{live}, worst {r['worst']}", "", *_md_findings(r["findings"]), ""]
    if ctx["runs_omitted"]:
        out += [f"{ctx['runs_omitted']} more runs with findings are not listed (use --json).",
                ""]
    out += ["## Quarantine", ""]
    if ctx["quarantine"]:
        out += ["| Run | Quarantined at | Codes | Record |", "|---|---|---|---|"]
        for q in ctx["quarantine"]:
            out.append(f"| {md_escape(q['folder'])} | {md_escape(q['quarantined_at'])} | "
                       f"{md_escape(' '.join(q['codes']))} | "
                       f"{'QUARANTINE.json' if q['record_ok'] else 'missing'} |")
    else:
        out.append("No runs in quarantine.")
    out += ["", "## Audit trail", ""]
    a = ctx["audit"]
    if not a["present"]:
        out.append("No audit log yet.")
    elif a["ok"]:
        out.append(f"Hash chain verified: {a['entries']} entries.")
    else:
        out += [f"**Hash chain BROKEN** ({a['entries']} entries).", "",
                "| Line | Problem |", "|---|---|"]
        out += [f"| {md_escape(p.get('line'))} | {md_escape(p['problem'])} |"
                for p in a["problems"]]
    return "\n".join(out) + "\n"


def human_table(findings: list[Finding], width: int = 100) -> str:
    """The readable table `validate` prints (tabulate): one finding a line, long cells
    clipped, control characters escaped."""
    if not findings:
        return "No findings.\n"
    caps = (8, 5, 40, 60, 10_000)

    def clip(s: str, w: int) -> str:
        s = printable(s)
        return s if len(s) <= w else s[: w - 1] + "…"

    rows = [[clip(c, cap) for c, cap in zip(
        (str(f.severity).upper(), f.code, f.run_id or "-",
         (f.file or "-") + (f":{f.line}" if f.line else ""), f.message), caps, strict=True)]
        for f in findings]
    heads = ("SEVERITY", "CODE", "RUN", "FILE:LINE", "FINDING")
    return tabulate(rows, headers=heads, tablefmt="plain", disable_numparse=True) + "\n"
