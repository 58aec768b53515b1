"""Regression gates: rules that compare a run against a baseline run.

Grammar (one rule; spaces optional, see docs/analytics.md):

    rule      := [kind "("] metric [")"] op threshold
    kind      := final | best | min | max | mean        (default: final)
    op        := >= | <= | > | < | ==
    threshold := signed number ["%"]

The left side is always the run's **change against the baseline**: with `%` the relative
change in percent, `(run - baseline) / |baseline| * 100`, else the absolute difference
`run - baseline`. `val_acc >= -0.5%` = "final val_acc may drop by at most 0.5 %";
`mean(step_time_ms) <= +10%` = "mean step time may grow by at most 10 %".
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .summary import RunSummary

KINDS = ("final", "best", "min", "max", "mean")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE_RE = re.compile(
    r"^\s*(?:(?P<kind>[A-Za-z]+)\s*\(\s*(?P<m1>[^()]+?)\s*\)|(?P<m2>[^\s<>=()]+))"
    r"\s*(?P<op>>=|<=|==|>|<)\s*(?P<thr>" + _NUMBER + r")\s*(?P<pct>%)?\s*$"
)


class RuleError(ValueError):
    """A rule that does not parse; the message says what is wrong and shows the grammar."""


GRAMMAR_HINT = ('expected "[final|best|min|max|mean(]METRIC[)] OP THRESHOLD[%]" with OP one of '
                '>= <= > < ==, e.g. "val_acc >= -0.5%" or "mean(step_time_ms) <= +10%"')


@dataclass(frozen=True)
class Rule:
    metric: str
    kind: str
    op: str
    threshold: float
    relative: bool
    text: str

    def describe(self) -> str:
        unit = "%" if self.relative else ""
        lhs = self.metric if self.kind == "final" else f"{self.kind}({self.metric})"
        return f"{lhs} {self.op} {self.threshold:+g}{unit}"


def parse_rule(text: str) -> Rule:
    """Parse one rule string; raises RuleError with the grammar on a bad rule."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"empty rule; {GRAMMAR_HINT}")
    m = _RULE_RE.match(text)
    if m is None:
        raise RuleError(f"cannot parse rule {text!r}; {GRAMMAR_HINT}")
    kind = (m.group("kind") or "final").lower()
    if kind not in KINDS:
        raise RuleError(f"unknown value kind {m.group('kind')!r} in rule {text!r}; "
                        f"expected one of {', '.join(KINDS)}")
    threshold = float(m.group("thr"))
    return Rule(metric=m.group("m1") or m.group("m2"), kind=kind, op=m.group("op"),
                threshold=threshold, relative=m.group("pct") is not None, text=text.strip())


_TABLE_KEYS = {"metric", "value", "op", "threshold", "relative"}


def _rule_from_table(item: dict[str, Any], where: str) -> Rule:
    unknown = set(item) - _TABLE_KEYS - {"rule"}
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                        f"allowed: rule, {', '.join(sorted(_TABLE_KEYS))}")
    if "rule" in item:
        if set(item) != {"rule"}:
            raise RuleError(f"{where}: give either `rule = \"...\"` or metric/op/threshold, not both")
        return parse_rule(item["rule"])
    missing = {"metric", "op", "threshold"} - set(item)
    if missing:
        raise RuleError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    metric, op, kind = item["metric"], item["op"], item.get("value", "final")
    threshold, relative = item["threshold"], item.get("relative")
    if not isinstance(metric, str) or not metric:
        raise RuleError(f"{where}: metric must be a non-empty string")
    if op not in OPS:
        raise RuleError(f"{where}: op {op!r} must be one of {' '.join(OPS)}")
    if kind not in KINDS:
        raise RuleError(f"{where}: value {kind!r} must be one of {', '.join(KINDS)}")
    if isinstance(threshold, str):
        tm = re.fullmatch(r"\s*(" + _NUMBER + r")\s*(%)?\s*", threshold)
        if tm is None:
            raise RuleError(f"{where}: threshold {threshold!r} is not a number or percentage")
        if relative is not None and bool(relative) != (tm.group(2) is not None):
            raise RuleError(f"{where}: threshold {threshold!r} disagrees with relative = {relative}")
        relative, threshold = tm.group(2) is not None, float(tm.group(1))
    elif isinstance(threshold, int | float) and not isinstance(threshold, bool):
        threshold = float(threshold)
        relative = bool(relative)
    else:
        raise RuleError(f"{where}: threshold must be a number or a string like \"-0.5%\"")
    if not math.isfinite(threshold):
        raise RuleError(f"{where}: threshold must be finite")
    if not isinstance(relative, bool):
        raise RuleError(f"{where}: relative must be true or false")
    rule = Rule(metric, kind, op, threshold, relative, "")
    return Rule(metric, kind, op, threshold, relative, rule.describe())


def load_rules_file(path: str | Path) -> list[Rule]:
    """Rules from TOML: `rules = ["...", ...]` and/or `[[rule]]` tables."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"rules", "rule"}
    if unknown:
        raise RuleError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                        "use `rules = [...]` or `[[rule]]` tables")
    out: list[Rule] = []
    strings = doc.get("rules", [])
    if not isinstance(strings, list):
        raise RuleError(f"{path}: `rules` must be a list of strings")
    for i, item in enumerate(strings):
        if isinstance(item, str):
            out.append(parse_rule(item))
        elif isinstance(item, dict):
            out.append(_rule_from_table(item, f"{path}: rules[{i}]"))
        else:
            raise RuleError(f"{path}: rules[{i}] must be a string or a table")
    tables = doc.get("rule", [])
    if not isinstance(tables, list):
        raise RuleError(f"{path}: `rule` must be an array of tables ([[rule]])")
    for i, item in enumerate(tables):
        out.append(_rule_from_table(item, f"{path}: [[rule]] #{i + 1}"))
    if not out:
        raise RuleError(f"{path}: no rules found")
    return out


@dataclass
class RuleResult:
    rule: Rule
    baseline: float | None
    candidate: float | None
    delta: float | None
    rel_pct: float | None
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        r = self.rule
        return {
            "rule": r.text, "metric": r.metric, "value": r.kind, "op": r.op,
            "threshold": r.threshold, "relative": r.relative, "baseline": self.baseline,
            "candidate": self.candidate, "delta": self.delta, "rel_pct": self.rel_pct,
            "passed": self.passed, "message": self.message,
        }


def evaluate_rule(rule: Rule, run: RunSummary, baseline: RunSummary) -> RuleResult:
    """Check one rule; a missing metric or a non-finite value is a violation."""
    mr, mb = run.metrics.get(rule.metric), baseline.metrics.get(rule.metric)
    if mr is None or mb is None:
        where = [name for name, m in ((run.run_id, mr), (baseline.run_id, mb)) if m is None]
        return RuleResult(rule, None, None, None, None, False,
                          f"metric {rule.metric!r} not logged by {' and '.join(where)}")
    cand, base = mr.value(rule.kind), mb.value(rule.kind)
    if not (math.isfinite(cand) and math.isfinite(base)):
        return RuleResult(rule, base, cand, None, None, False,
                          f"{rule.kind} {rule.metric} is not finite (baseline {base}, run {cand})")
    d = cand - base
    if base != 0:
        rel_pct = d / abs(base) * 100.0
    else:
        rel_pct = 0.0 if d == 0 else math.copysign(math.inf, d)
    observed = rel_pct if rule.relative else d
    passed = OPS[rule.op](observed, rule.threshold)
    unit = "%" if rule.relative else ""
    shown = f"{observed:+.4g}{unit}" if math.isfinite(observed) else f"{observed}{unit} (baseline is 0)"
    verdict = "ok" if passed else "VIOLATED"
    msg = (f"{verdict}: {rule.kind} {rule.metric} {base:.6g} -> {cand:.6g}, change {shown}, "
           f"required {rule.op} {rule.threshold:+g}{unit}")
    return RuleResult(rule, base, cand, d, rel_pct, passed, msg)


def evaluate(rules: Iterable[Rule], run: RunSummary, baseline: RunSummary) -> dict[str, Any]:
    """The `gate --json` document (without hooks)."""
    results = [evaluate_rule(r, run, baseline) for r in rules]
    failed = sum(not r.passed for r in results)
    return {
        "run": run.run_id, "baseline": baseline.run_id, "passed": failed == 0,
        "failed": failed, "total": len(results), "rules": [r.to_json() for r in results],
    }
