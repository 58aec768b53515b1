"""CLI commands of rustorch_tools.analytics (added to the group in rustorch_tools.cli).

compare, graph, gate, export, report, index. Exit codes: 0 clean, 1 failed gate,
2 usage or I/O error. Unreadable runs are listed (stderr, `broken` in --json) and never
stop a command unless the command names that run.
"""

from __future__ import annotations

import io
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from ..errors import RustorchToolsError
from ..store import atomic
from . import compare as compare_mod
from . import export as export_mod
from . import gates as gates_mod
from . import hooks, lineage
from .index import IndexLockTimeout, RunIndex
from .jsonout import dumps
from .report import ReportOptions, render_report
from .runsource import RunLookupError, RunSource
from .summary import VALUE_KINDS, BrokenRun
from .tables import fmt_delta, fmt_pct, text_table


class CommandError(click.ClickException):
    """Usage or I/O problem: exit status 2 (click's own usage errors also exit 2)."""

    exit_code = 2


@contextmanager
def _errors_as_exit2() -> Iterator[None]:
    try:
        yield
    except (RunLookupError, gates_mod.RuleError, RustorchToolsError) as exc:
        raise CommandError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise CommandError(f"analytics index: {exc} (the cache RUNS_DIR/.index can be deleted)") from exc
    except IndexLockTimeout as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from exc


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file replaced atomically once complete (no half-written output)."""
    if path is None:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, like other Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        return
    # Replaces a link at `path` instead of writing through it; created 0644.
    with atomic.output_file(path) as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield fh
        fh.flush()
        fh.detach()  # `raw` is closed (and renamed into place) by output_file


@contextmanager
def _suppress() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


def _warn_broken(broken: list[BrokenRun]) -> None:
    for b in broken:
        click.echo(f"warning: run {b.run_id} is unreadable and was skipped: {b.error}", err=True)


def _metric_list(text: str | None) -> list[str] | None:
    return export_mod.parse_metric_patterns(text)


_runs_dir_option = click.option(
    "--runs-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Look run ids up in this RUNS_DIR (run folders can also be given as paths).")


# -- compare ------------------------------------------------------------------------------
@click.command("compare")
@click.argument("runs", nargs=-1)
@click.option("--baseline", metavar="RUN",
              help="Compare every run of RUNS_DIR against RUN (then give RUNS_DIR as the only argument).")
@_runs_dir_option
@click.option("--metrics", metavar="LIST", help="Comma-separated metric names or globs (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document.")
@click.option("--markdown", is_flag=True, help="Print Markdown tables.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of stdout.")
def compare_cmd(runs: tuple[str, ...], baseline: str | None, runs_dir: Path | None,
                metrics: str | None, as_json: bool, markdown: bool, output: Path | None) -> None:
    """Compare runs: config diff, metric deltas and environment diff.

    \b
    compare RUN_A RUN_B [RUN_C ...]      the first run is the reference
    compare --baseline RUN RUNS_DIR      every run of RUNS_DIR against RUN
    """
    if as_json and markdown:
        raise click.UsageError("--json and --markdown are exclusive")
    with _errors_as_exit2(), RunSource() as source:
        if baseline is not None:
            if len(runs) != 1:
                raise click.UsageError("with --baseline give exactly one argument: RUNS_DIR")
            root = Path(runs[0])
            ix = source.index(root)
            ref = source.get(baseline, root)
            others = [r for r in ix.summaries() if r.run_id != ref.run_id]
            broken = ix.broken()
        else:
            if len(runs) < 2:
                raise click.UsageError("give at least two runs, or --baseline RUN RUNS_DIR")
            summaries = [source.get(arg, runs_dir) for arg in runs]
            ref, others, broken = summaries[0], summaries[1:], []
        names = _selected(metrics, [ref, *others])
        if names == []:
            raise CommandError(f"no metric of these runs matches {metrics!r}")
        for r in [ref, *others]:
            source.index(Path(r.path).parent).load_series([r], names)
        doc = compare_mod.compare(ref, others, names)
        doc["broken"] = [b.to_json() for b in broken]
        _warn_broken(broken)
        with _output(output) as out:
            out.write(dumps(doc) + "\n" if as_json else compare_mod.render_text(doc, markdown))


def _selected(text: str | None, runs: list) -> list[str] | None:
    patterns = _metric_list(text)
    if patterns is None:
        return None
    names = {n for r in runs for n in r.metrics}
    return export_mod.select_metrics(names, patterns)


# -- graph --------------------------------------------------------------------------------
@click.command("graph")
@click.argument("runs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["dot", "json"]), default="dot", show_default=True)
@click.option("--descendants", metavar="RUN",
              help="Only RUN (id, unique id prefix or name) and the runs descending from it.")
@click.option("--no-config-edges", is_flag=True, help="Leave out the same-config edges.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def graph_cmd(runs_dir: Path, fmt: str, descendants: str | None, no_config_edges: bool,
              output: Path | None) -> None:
    """Lineage graph: parent links (resume, fork, finetune) and shared configs."""
    with _errors_as_exit2(), RunSource() as source:
        ix = source.index(runs_dir)
        runs = ix.summaries()
        _warn_broken(ix.broken())
        if descendants is None:
            graph = lineage.build_graph(runs, config_edges=not no_config_edges)
            text = dumps(graph) if fmt == "json" else lineage.to_dot(graph)
        else:
            descendants = source.get(descendants, runs_dir).run_id  # id, prefix or name
            desc = lineage.descendants(runs, descendants)
            if fmt == "json":
                text = dumps({"root": descendants, "descendants": desc})
            else:
                keep = {descendants, *(d["run_id"] for d in desc)}
                sub = lineage.build_graph([r for r in runs if r.run_id in keep], config_edges=False)
                text = lineage.to_dot(sub, highlight={descendants})
        with _output(output) as out:
            out.write(text if text.endswith("\n") else text + "\n")


# -- gate ---------------------------------------------------------------------------------
@click.command("gate")
@click.argument("run")
@click.option("--baseline", metavar="RUN", required=True, help="The run to compare against.")
@_runs_dir_option
@click.option("--rule", "rule_texts", multiple=True, metavar="RULE",
              help='e.g. "val_acc >= -0.5%" or "mean(step_time_ms) <= +10%" (repeatable).')
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML file with rules (see docs/analytics.md).")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document.")
@click.option("--on-fail-exec", "on_fail_exec", metavar="CMD", multiple=True,
              help="Run CMD when the gate fails (payload JSON on stdin and in $RUSTORCH_GATE_PAYLOAD).")
@click.option("--on-fail-webhook", "on_fail_webhook", metavar="URL", multiple=True,
              help="POST the payload JSON to URL when the gate fails.")
@click.option("--hook-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds each hook may take.")
def gate_cmd(run: str, baseline: str, runs_dir: Path | None, rule_texts: tuple[str, ...],
             rules_file: Path | None, as_json: bool, on_fail_exec: tuple[str, ...],
             on_fail_webhook: tuple[str, ...], hook_timeout: float) -> None:
    """Check RUN against a baseline run; exit 1 when a rule is violated.

    \b
    RULE := [final|best|min|max|mean(]METRIC[)] OP THRESHOLD[%]
    OP is >= <= > < ==; the left side is the change against the baseline:
    relative in percent with %, absolute without. Examples:
      "val_acc >= -0.5%"            final val_acc drops by at most 0.5 %
      "mean(step_time_ms) <= +10%"  mean step time grows by at most 10 %
      "best(loss) <= 0"             best loss no worse than the baseline's
    """
    with _errors_as_exit2(), RunSource() as source:
        rules = [gates_mod.parse_rule(t) for t in rule_texts]
        if rules_file is not None:
            rules += gates_mod.load_rules_file(rules_file)
        if not rules:
            raise click.UsageError("give at least one --rule or --rules FILE.toml")
        cand = source.get(run, runs_dir)
        base = source.get(baseline, runs_dir if runs_dir is not None else Path(cand.path).parent)
        doc = gates_mod.evaluate(rules, cand, base)
    doc["hooks"] = []
    if not doc["passed"]:
        for cmd in on_fail_exec:
            doc["hooks"].append(hooks.run_command_hook(cmd, doc, timeout=hook_timeout))
        for url in on_fail_webhook:
            doc["hooks"].append(hooks.post_webhook(url, doc, timeout=hook_timeout))
    if as_json:
        click.echo(dumps(doc))
    else:
        verdict = "PASSED" if doc["passed"] else "FAILED"
        click.echo(f"gate {verdict}: {doc['run']} vs baseline {doc['baseline']} "
                   f"({doc['total'] - doc['failed']}/{doc['total']} rules hold)")
        for r in doc["rules"]:
            click.echo(f"  [{'ok' if r['passed'] else 'FAIL'}] {r['rule']}: {r['message']}")
    for h in doc["hooks"]:
        if not h["ok"]:
            click.echo(f"warning: {h['kind']} hook {h['target']!r} failed: {h.get('error')}", err=True)
    sys.exit(0 if doc["passed"] else 1)


# -- export -------------------------------------------------------------------------------
@click.command("export")
@click.argument("runs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--metrics", metavar="LIST", help='Comma-separated names or globs, e.g. "loss,acc" or "device/*".')
@click.option("--device", is_flag=True, help='Device telemetry only (same as --metrics "device/*").')
@click.option("--wide", is_flag=True, help="One column per metric instead of one record per value.")
@click.option("--run", "run_ids", multiple=True, metavar="RUN",
              help="Only these runs (id, unique id prefix or name; repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def export_cmd(runs_dir: Path, fmt: str, metrics: str | None, device: bool, wide: bool,
               run_ids: tuple[str, ...], output: Path | None) -> None:
    """Export metric rows (and device telemetry) as CSV or JSON."""
    if device and metrics:
        raise click.UsageError("--device and --metrics are exclusive")
    patterns = [export_mod.DEVICE_PATTERN] if device else _metric_list(metrics)
    with _errors_as_exit2(), RunSource() as source:
        ix = source.index(runs_dir)
        # --run: an id, a unique id prefix or a run name, as everywhere
        runs = list({r.run_id: r for r in (source.get(a, runs_dir) for a in run_ids)}.values()) \
            if run_ids else ix.summaries()
        _warn_broken(ix.broken())
        names = export_mod.select_metrics({n for r in runs for n in r.metrics}, patterns)
        if patterns is not None and not names:
            raise CommandError(f"no metric matches {', '.join(patterns)}")
        with _output(output) as out:
            n = export_mod.export(out, [(r.run_id, Path(r.path)) for r in runs], names, fmt, wide)
    if output is not None:
        click.echo(f"wrote {n} record(s) from {len(runs)} run(s) to {output}", err=True)


# -- report -------------------------------------------------------------------------------
@click.command("report")
@click.argument("runs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write.")
@click.option("--metric", "metric_names", multiple=True, metavar="METRIC",
              help="Metric to chart and tabulate (repeatable; default: loss/accuracy-like ones).")
@click.option("--max-curves", type=click.IntRange(min=1), default=10, show_default=True,
              help="Runs drawn per chart (the most recent).")
@click.option("--baseline", metavar="RUN", help="Compare (and gate) every run against RUN.")
@click.option("--rule", "rule_texts", multiple=True, metavar="RULE", help="Gate rule (needs --baseline).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML file with gate rules (needs --baseline).")
@click.option("--drift-metric", metavar="METRIC", help="Metric of the drift view (default: an accuracy).")
@click.option("--drift-threshold", type=float, help="Threshold line of the drift view.")
@click.option("--drift-value", type=click.Choice(VALUE_KINDS), default="final", show_default=True,
              help="Which value of each run the drift view plots.")
@click.option("--title", default="rustorch runs report", show_default=True, help="Page title.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {output, bytes, runs, unreadable_runs, gate_failures} as JSON on stdout.")
def report_cmd(runs_dir: Path, output: Path, metric_names: tuple[str, ...], max_curves: int,
               baseline: str | None, rule_texts: tuple[str, ...], rules_file: Path | None,
               drift_metric: str | None, drift_threshold: float | None, drift_value: str,
               title: str, as_json: bool) -> None:
    """Write a self-contained HTML report: curves, comparison, gates, drift.

    Exit codes: 0 written, 1 gate rules are given and some run fails them, 2 usage or I/O
    error.
    """
    with _errors_as_exit2(), RunSource() as source:
        rules = [gates_mod.parse_rule(t) for t in rule_texts]
        if rules_file is not None:
            rules += gates_mod.load_rules_file(rules_file)
        if rules and baseline is None:
            raise click.UsageError("gate rules in a report need --baseline RUN")
        ix = source.index(runs_dir)
        _warn_broken(ix.broken())
        if baseline is not None:  # an id, a unique id prefix or a run name
            baseline = source.get(baseline, runs_dir).run_id
        opts = ReportOptions(metrics=list(metric_names) or None, max_curves=max_curves,
                             baseline=baseline, rules=rules, drift_metric=drift_metric,
                             drift_threshold=drift_threshold, drift_value=drift_value, title=title)
        text, failed = render_report(ix, opts)
        with _output(output) as out:
            out.write(text)
        counts = {"runs": len(ix.summaries()), "unreadable_runs": len(ix.broken())}
    if as_json:
        click.echo(dumps({"output": str(output), "bytes": len(text.encode()), **counts,
                          "gate_failures": failed}))
    else:
        click.echo(f"wrote {output}" + (f" ({failed} run(s) failed the gate)" if failed else ""), err=True)
    sys.exit(1 if failed else 0)


# -- index --------------------------------------------------------------------------------
@click.command("index")
@click.argument("runs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rebuild", is_flag=True, help="Drop the cache and rebuild it from the files.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="Worker processes for big refreshes (default: $RUSTORCH_ANALYTICS_JOBS or the CPU count, max 8).")
@click.option("--deltas", is_flag=True,
              help="Also print each run's stored deltas against its own baseline (tag, else parent).")
@click.option("--json", "as_json", is_flag=True)
def index_cmd(runs_dir: Path, rebuild: bool, jobs: int | None, deltas: bool, as_json: bool) -> None:
    """Refresh (or rebuild) the analytics index under RUNS_DIR/.index/."""
    with _errors_as_exit2():
        if not runs_dir.is_dir():
            raise CommandError(f"runs directory not found: {runs_dir}")
        with RunIndex(runs_dir, jobs=jobs) as ix:
            if rebuild:
                ix.rebuild()
            stats = ix.refresh()
            broken = ix.broken()
            stored = ix.deltas() if deltas else []
    doc = {**stats.to_json(), "broken": [b.to_json() for b in broken]}
    if deltas:
        doc["deltas"] = stored
    if as_json:
        click.echo(dumps(doc))
        return
    click.echo(f"{stats.scanned} run(s), {stats.updated} re-read, {stats.removed} removed, "
               f"{len(broken)} unreadable, {stats.seconds:.3f} s")
    if deltas:
        rows = [[d["run_id"], d["baseline_id"], d["metric"], fmt_delta(d["final_abs"]),
                 fmt_pct(d["final_rel"]), fmt_delta(d["best_abs"]), fmt_pct(d["best_rel"])]
                for d in stored]
        click.echo(text_table(["run", "baseline", "metric", "Δ final", "Δ% final", "Δ best",
                               "Δ% best"], rows) if rows else "(no run has a baseline)")
    _warn_broken(broken)


COMMANDS: list[click.Command] = [compare_cmd, graph_cmd, gate_cmd, export_cmd, report_cmd, index_cmd]
