"""Streaming integrity check of `metrics.jsonl` / `events.jsonl` (the `_crc` line format).

The store's `jsonl.scan` decodes one line at a time (~10 µs a line in CPython); validating
millions of rows that way is far too slow, so this module checks lines in bulk: a chunk of
complete lines is CRC-checked with `zlib.crc32` mapped over the line bodies plus a vectorized
numpy step for the closing `}`, steps are parsed from the raw bytes with numpy, and a single
regex search proves every value is a plain number. Any chunk that does not pass the fast
path (a bad CRC, a string, `_nonfinite`, `rank`, odd key order) is re-checked line by line
with the store's `decode_line`, which gives the precise reason. Memory stays bounded by the
chunk size whatever the file size; a line longer than `MAX_LINE` is reported and skipped
without being buffered.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from ..errors import CorruptLineError
from ..store.jsonl import decode_line
from .findings import Finding

CHUNK = 4 << 20
MAX_LINE = 16 << 20
MAX_PER_CODE = 10  # individual findings per code and file; the rest are counted

_SUFFIX_LEN = len(',"_crc":"00000000"}')
# Relative to a line's newline: `,"_crc":"` at -19..-11, 8 hex digits at -10..-3, `"}` at -2..-1.
_TAIL_HEAD = np.frombuffer(b',"_crc":"', np.uint8)
_TAIL_HEAD_OFFSETS = np.concatenate([np.arange(-19, -10), [-2, -1]])
_TAIL_HEAD = np.concatenate([_TAIL_HEAD, np.frombuffer(b'"}', np.uint8)])
_TAIL_HEX_OFFSETS = np.arange(-10, -2)
_HEX = np.full(256, -1, np.int16)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_NIBBLE_SHIFTS = np.arange(28, -1, -4, dtype=np.uint32)
_STEP_PREFIX = b'{"step":'
_EVENTS = frozenset({"created", "resumed", "checkpointed", "artifact", "finished", "failed",
                     "crashed", "migrated", "repaired", "quarantined", "released"})
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _crc_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        table[n] = c
    return table


_TABLE = _crc_table()
_BRACE = np.uint32(ord("}"))
_MASK = np.uint32(0xFFFFFFFF)


@dataclass
class JsonlStats:
    rows: int = 0  # valid rows
    last_row: dict | None = None  # last valid row, non-finite values restored
    torn: bool = False
    torn_offset: int | None = None
    corrupt: int = 0
    nonfinite_steps: list[int] = field(default_factory=list)
    last_steps: dict = field(default_factory=dict)  # rank (None: no rank) -> last step


class _Collector:
    """Caps findings per code so a wholly corrupt file yields a short, useful list."""

    def __init__(self, run_id: str | None, rel: str) -> None:
        self.run_id, self.rel = run_id, rel
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}

    def add(self, code: str, message: str, line: int | None) -> None:
        n = self.counts.get(code, 0) + 1
        self.counts[code] = n
        if n <= MAX_PER_CODE:
            self.findings.append(Finding(code, message, self.run_id, self.rel, line))

    def finish(self) -> list[Finding]:
        for code, n in self.counts.items():
            if n > MAX_PER_CODE:
                self.findings.append(Finding(
                    code, f"{n - MAX_PER_CODE} more lines with this problem (not listed)",
                    self.run_id, self.rel, None))
        return self.findings


def _expected_crcs(arr: np.ndarray, nl: np.ndarray) -> np.ndarray | None:
    """The `_crc` values written at the end of each line (`nl`: newline offsets), or None if
    any line does not end with `,"_crc":"<8 lowercase hex>"}`."""
    head = arr[nl[:, None] + _TAIL_HEAD_OFFSETS]
    if not (head == _TAIL_HEAD).all():
        return None
    vals = _HEX[arr[nl[:, None] + _TAIL_HEX_OFFSETS]]
    if (vals < 0).any():
        return None
    return (vals.astype(np.uint32) << _NIBBLE_SHIFTS).sum(axis=1, dtype=np.uint32)


def _actual_crcs(lines: list[bytes]) -> np.ndarray:
    """CRC32 of `line[:-19] + b"}"` for every line: zlib over the bodies, then the `}` byte
    folded in with one vectorized table step (zlib's pre/post inversion made explicit)."""
    bodies = np.fromiter(map(zlib.crc32, map(itemgetter(slice(None, -_SUFFIX_LEN)), lines)),
                         np.uint32, len(lines))
    c = bodies ^ _MASK
    c = _TABLE[(c ^ _BRACE) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ _MASK


def _values_are_numbers(arr: np.ndarray, nl: np.ndarray) -> bool:
    """True when every value in the lines is a plain JSON number except the `_crc` string.

    A value starts right after a `":` (a key's closing quote and the colon); a `":` inside a
    key can only add positions, which makes the test stricter, never looser.
    """
    colon = np.flatnonzero(arr == 58)
    colon = colon[(colon > 0) & (colon < len(arr) - 2)]
    colon = colon[arr[colon - 1] == 34]
    nxt = arr[colon + 1]
    quoted = nxt == 34
    if not np.array_equal(colon[quoted], nl - 12):  # exactly one string a line: the CRC
        return False
    rest = nxt[~quoted]
    digit = (rest >= 48) & (rest <= 57)
    if digit.all():
        return True
    minus = rest == 45
    if not (digit | minus).all():
        return False
    after = arr[colon[~quoted][minus] + 2]
    return bool(((after >= 48) & (after <= 57)).all())


def _fast_steps(arr: np.ndarray, starts: np.ndarray, nl: np.ndarray) -> np.ndarray | None:
    """Steps of rows that all start with `{"step":<digits>,`; None otherwise."""
    heads = arr[starts[:, None] + np.arange(len(_STEP_PREFIX))]
    if not (heads == np.frombuffer(_STEP_PREFIX, np.uint8)).all():
        return None
    first = starts + len(_STEP_PREFIX)
    commas = np.flatnonzero(arr == 44)
    ends = commas[np.minimum(np.searchsorted(commas, first), len(commas) - 1)]
    ndig = ends - first
    if len(commas) == 0 or (ndig < 1).any() or (ndig > 18).any() or (ends > nl).any():
        return None  # 18 digits stay int64-safe; longer steps take the slow path
    if ((ndig > 1) & (arr[first] == 48)).any():  # leading zero: not JSON
        return None
    val = np.zeros(len(starts), np.int64)
    for j in range(int(ndig.max())):
        take = ndig > j
        d = arr[np.where(take, first + j, first)].astype(np.int64) - 48
        if ((d < 0) | (d > 9)).any():
            return None
        val = np.where(take, val * 10 + d, val)
    return val


class JsonlChecker:
    """Feeds chunks of complete lines; keeps the state that spans chunks (last step per rank)."""

    def __init__(self, kind: str, run_id: str | None, rel: str) -> None:
        self.kind = kind
        self.out = _Collector(run_id, rel)
        self.stats = JsonlStats()
        self.last_step: dict[object, int] = {}
        self.descents = 0

    # -- fast path -------------------------------------------------------------------------
    def feed(self, chunk: bytes, first_lineno: int) -> None:
        """`chunk`: complete lines, each ending with b"\\n"."""
        lines = chunk.split(b"\n")
        lines.pop()  # after the final newline
        if not lines:
            return
        if self.kind == "metrics" and self._fast(chunk, lines, first_lineno):
            return
        for i, line in enumerate(lines):
            self._slow_line(line, first_lineno + i)

    def _fast(self, chunk: bytes, lines: list[bytes], first: int) -> bool:
        if b'"rank":' in chunk:
            return False
        arr = np.frombuffer(chunk, np.uint8)
        nl = np.flatnonzero(arr == 10)
        starts = np.empty_like(nl)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        if len(nl) != len(lines) or ((nl - starts) < len(_STEP_PREFIX) + _SUFFIX_LEN + 2).any():
            return False
        if not _values_are_numbers(arr, nl):
            return False
        expected = _expected_crcs(arr, nl)
        if expected is None or not np.array_equal(expected, _actual_crcs(lines)):
            return False
        steps = _fast_steps(arr, starts, nl)
        if steps is None:
            return False
        prev = self.last_step.get(None)
        if prev is not None and steps[0] < prev:
            self._descent(first, int(steps[0]), prev)
        down = np.flatnonzero(steps[1:] < steps[:-1])
        for i in down[:MAX_PER_CODE]:
            self._descent(first + int(i) + 1, int(steps[i + 1]), int(steps[i]))
        for _ in down[MAX_PER_CODE:]:
            self.out.add("RT203", "", None)
        self.last_step[None] = int(steps[-1])
        self.stats.rows += len(lines)
        self._set_last(lines[-1])
        return True

    def _set_last(self, line: bytes) -> None:
        try:
            self.stats.last_row = _restore(decode_line(line))
        except (CorruptLineError, ValueError):
            self.stats.last_row = None

    def _descent(self, lineno: int, step: int, prev: int) -> None:
        self.descents += 1
        self.out.add("RT203", f"step {step} after step {prev}", lineno)

    # -- slow path -------------------------------------------------------------------------
    def _slow_line(self, line: bytes, lineno: int) -> None:
        try:
            row = decode_line(line)
        except CorruptLineError as e:
            self.stats.corrupt += 1
            self.out.add("RT201", f"corrupt line: {e}", lineno)
            return
        except (ValueError, RecursionError) as e:  # defensive: decode_line should not raise these
            self.stats.corrupt += 1
            self.out.add("RT201", f"corrupt line: {type(e).__name__}", lineno)
            return
        problems = check_metric_row(row) if self.kind == "metrics" else _check_event(row)
        if problems and problems[0] != "RT205":  # non-finite rows are counted in finish()
            self.out.add(problems[0], problems[1], lineno)
            return
        self.stats.rows += 1
        self.stats.last_row = _restore(row)
        if self.kind == "metrics":
            rank = row.get("rank")
            step = row["step"]
            prev = self.last_step.get(rank)
            if prev is not None and step < prev:
                self._descent(lineno, step, prev)
            self.last_step[rank] = step
            if row.get("_nonfinite"):
                self.stats.nonfinite_steps.append(step)

    def torn(self, offset: int, lineno: int, live: bool, size: int) -> None:
        if live:
            self.out.add("RT208", f"{size} bytes after the last newline (being written)", lineno)
        else:
            self.stats.torn, self.stats.torn_offset = True, offset
            self.out.add("RT202", f"{size} bytes after the last newline at offset {offset}",
                         lineno)

    def finish(self) -> list[Finding]:
        if self.stats.nonfinite_steps:
            s = self.stats.nonfinite_steps
            self.out.add("RT205", f"{len(s)} rows with non-finite values, first at step {s[0]}",
                         None)
        return self.out.finish()


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_metric_row(row: dict) -> tuple[str, str] | None:
    step = row.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return "RT206", f"step must be an integer >= 0, got {step!r:.40}"
    if not _is_number(row.get("time")):
        return "RT206", "time must be a number"
    rank = row.get("rank")
    if "rank" in row and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 0):
        return "RT206", "rank must be an integer >= 0"
    declared = row.get("_nonfinite", [])
    if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
        return "RT206", "_nonfinite must be a list of metric names"
    for key, value in row.items():
        if key in ("step", "time", "rank", "_nonfinite"):
            continue
        if not key or key.startswith("_") or len(key) > 200:
            return "RT206", f"invalid metric name {key!r:.60}"
        if isinstance(value, str) and value in _NONFINITE:
            if key not in declared:
                return "RT204", f"{key!r:.60} is {value!r} but not listed in _nonfinite"
            continue
        if not _is_number(value):
            return "RT206", f"metric {key!r:.60} is not a number ({type(value).__name__})"
        if isinstance(value, float) and not math.isfinite(value):
            return "RT204", f"{key!r:.60} holds a raw {value!r} literal (not valid JSON)"
    for name in declared:
        if row.get(name) not in _NONFINITE:
            return "RT206", f"_nonfinite lists {name!r:.60} whose value is finite"
    if declared:
        return "RT205", f"non-finite {', '.join(map(str, declared[:5]))} at step {step}"
    return None


def _check_event(row: dict) -> tuple[str, str] | None:
    if not _is_number(row.get("time")):
        return "RT206", "event time must be a number"
    if row.get("event") not in _EVENTS:
        return "RT206", f"unknown event {row.get('event')!r:.60}"
    if "detail" in row and not isinstance(row["detail"], dict):
        return "RT206", "event detail must be an object"
    return None


def _restore(row: dict) -> dict:
    names = row.get("_nonfinite")
    if not names:
        return row
    out = dict(row)
    for name in names if isinstance(names, list) else ():
        if isinstance(out.get(name), str) and out[name] in _NONFINITE:
            out[name] = _NONFINITE[out[name]]
    return out


def check_jsonl(path: Path, kind: str, run_id: str | None, rel: str, live: bool,
                chunk_size: int | None = None) -> tuple[list[Finding], JsonlStats]:
    """Check one JSONL file. `live`: the run's heartbeat is fresh (a torn tail is in flight).

    Reads with O_NOFOLLOW; the caller has already refused symlinks, this closes the race.
    Raises OSError if the file cannot be opened or read.
    """
    checker = JsonlChecker(kind, run_id, rel)
    chunk_size = chunk_size or CHUNK
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        carry = b""
        offset = 0  # file offset of carry[0]
        lineno = 1  # line number of carry's first line
        skipping = False  # inside an over-long line
        while True:
            block = os.read(fd, chunk_size)
            if not block:
                break
            if skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    offset += len(block)
                    continue
                skipping = False
                offset += nl + 1
                lineno += 1
                block = block[nl + 1:]
            data = carry + block if carry else block
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_LINE:
                    checker.out.add("RT201", f"line longer than {MAX_LINE} bytes", lineno)
                    checker.stats.corrupt += 1
                    offset += len(data)
                    carry, skipping = b"", True
                else:
                    carry = data
                continue
            complete, carry = data[:cut + 1], data[cut + 1:]
            checker.feed(complete, lineno)
            lineno += complete.count(b"\n")
            offset += len(complete)
        if carry:  # (an over-long tail was reported above and is never "torn")
            checker.torn(offset, lineno, live, len(carry))
    finally:
        os.close(fd)
    checker.stats.last_steps = dict(checker.last_step)
    return checker.finish(), checker.stats
