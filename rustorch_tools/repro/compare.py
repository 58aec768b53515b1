"""Step-by-step, bit-exact comparison of two runs' metrics (the heart of `replay`).

Both sides are canonical metric lines (`{"step", "rank"?, "metrics"}`, bundle.metrics.jsonl).
Values are compared by their exact JSON text, so 0.1 vs 0.1000000001, 1 vs 1.0 and 0.0 vs -0.0
all differ. Metrics matching a volatile pattern (timings) are skipped and reported.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, int, str]  # (rank, step, metric); rank -1 = no rank


@dataclass(frozen=True)
class Divergence:
    rank: int | None
    step: int | None
    metric: str | None
    original: Any
    replay: Any
    reason: str

    def describe(self) -> str:
        where = f"step {self.step}" + (f", rank {self.rank}" if self.rank is not None else "")
        return (f"first divergence at {where}, metric {self.metric!r}: original "
                f"{self.original!r}, replay {self.replay!r} ({self.reason})")


@dataclass
class Comparison:
    compared: int = 0
    skipped: list[str] = field(default_factory=list)
    divergence: Divergence | None = None

    @property
    def identical(self) -> bool:
        return self.divergence is None


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """Canonical metric lines; ValueError naming the first malformed one."""
    rows = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if (not isinstance(row, dict) or not isinstance(row.get("step"), int)
                or not isinstance(row.get("metrics"), dict)
                or not isinstance(row.get("rank", -1), int)):
            raise ValueError(f"metrics line {n} is not {{step, metrics, rank?}}")
        rows.append(row)
    return rows


def _sequence(rows: Iterable[dict[str, Any]], volatile: Sequence[str],
              skipped: set[str]) -> dict[int, list[tuple[int, str, Any]]]:
    per_rank: dict[int, list[tuple[int, str, Any]]] = {}
    for row in rows:
        rank = row.get("rank", -1)
        for name in sorted(row["metrics"]):
            if any(fnmatch.fnmatchcase(name, p) for p in volatile):
                skipped.add(name)
                continue
            per_rank.setdefault(rank, []).append((row["step"], name, row["metrics"][name]))
    return per_rank


def _text(value: Any) -> str:
    return json.dumps(value)


def compare(original: list[dict[str, Any]], replay: list[dict[str, Any]],
            volatile: Sequence[str] = ()) -> Comparison:
    skipped: set[str] = set()
    a = _sequence(original, volatile, skipped)
    b = _sequence(replay, volatile, skipped)
    out = Comparison(skipped=sorted(skipped))
    for rank in sorted(set(a) | set(b)):
        sa, sb = a.get(rank, []), b.get(rank, [])
        shown_rank = None if rank == -1 else rank
        for i in range(max(len(sa), len(sb))):
            if i >= len(sb):
                step, name, value = sa[i]
                out.divergence = Divergence(shown_rank, step, name, value, None,
                                            "missing in the replay")
                return out
            if i >= len(sa):
                step, name, value = sb[i]
                out.divergence = Divergence(shown_rank, step, name, None, value,
                                            "not in the original run")
                return out
            (s1, n1, v1), (s2, n2, v2) = sa[i], sb[i]
            if (s1, n1) != (s2, n2):
                out.divergence = Divergence(shown_rank, s1, n1, v1, v2 if n2 == n1 else None,
                                            f"the replay logged {n2!r} at step {s2} instead")
                return out
            if _text(v1) != _text(v2):
                out.divergence = Divergence(shown_rank, s1, n1, v1, v2, "values differ")
                return out
            out.compared += 1
    return out
