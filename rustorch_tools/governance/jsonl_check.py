"""Streaming integrity check of `metrics.jsonl` / `events.jsonl` (the `_crc` line format).

The store's `jsonl.scan` decodes one line at a time (~10 µs a line in CPython); validating
millions of rows that way is far too slow, so this module checks lines in bulk: a chunk of
complete lines is CRC-checked with `zlib.crc32` mapped over the whole lines and the tails undone
in vectorized table look-ups (line_crc), the stored CRCs, the steps and the value types are read from
the raw bytes with numpy (docs/governance.md lists what this proves). A chunk that does not
pass (a bad CRC, a string, `_nonfinite`, `rank`, odd key order) is halved until the halves
are small, and only the small pieces that still fail are re-checked line by line with the
store's `decode_line`, which gives the precise reason. Memory stays bounded by the chunk size
whatever the file size; a line longer than `MAX_LINE` is reported and skipped without being
buffered.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CorruptLineError
from ..store import line_crc
from ..store.jsonl import decode_line, is_torn_fragment
from .findings import Finding

CHUNK = 4 << 20
MAX_LINE = 16 << 20
MAX_PER_CODE = 10  # individual findings per code and file; the rest are counted
_MIN_SPLIT = 256  # a failing piece of at most this many lines is checked line by line

_SUFFIX_LEN = len(',"_crc":"00000000"}')
# Relative to a line's newline: `,"_crc":"` at -19..-11, 8 hex digits at -10..-3, `"}` at -2..-1.
_TAIL_HEAD = np.frombuffer(b',"_crc":"', np.uint8)
_TAIL_HEAD_OFFSETS = np.concatenate([np.arange(-19, -10), [-2, -1]])
_TAIL_HEAD = np.concatenate([_TAIL_HEAD, np.frombuffer(b'"}', np.uint8)])
_TAIL_HEX_OFFSETS = np.arange(-10, -2)
_STEP_HEAD = np.frombuffer(b'{"step":', np.uint8)
_STEP_OFFSETS = np.arange(8)
# Two key colons closer than this leave no room for a key over 200 characters between them.
_MAX_KEY_SPAN = 204
_TIME_KEY = np.frombuffer(b',"time":', np.uint8)
_TIME_OFFSETS = np.arange(len(_TIME_KEY))
_RANK_KEY = np.frombuffer(b'"rank', np.uint8)
_RANK_OFFSETS = np.arange(-6, -1)
_STEP_PREFIX = b'{"step":'
_EVENTS = frozenset({"created", "resumed", "checkpointed", "artifact", "finished", "failed",
                     "crashed", "migrated", "repaired", "quarantined", "released"})
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass
class JsonlStats:
    rows: int = 0  # valid rows
    last_row: dict | None = None  # last valid row, non-finite values restored
    torn: bool = False
    torn_offset: int | None = None
    torn_lines: list[int] = field(default_factory=list)  # torn lines before the last one
    corrupt: int = 0
    nonfinite_steps: list[int] = field(default_factory=list)
    last_steps: dict = field(default_factory=dict)  # rank (None: no rank) -> last step
    max_step: int | None = None  # highest step of any valid row
    prefix_bytes: int = 0  # with check_jsonl's digest_limit: how many bytes were hashed
    prefix_sha256: str | None = None  # and their SHA-256 (the file read once, not twice)


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
    digits = arr[nl[:, None] + _TAIL_HEX_OFFSETS]
    if ((digits >= 65) & (digits <= 70)).any():  # uppercase: fromhex takes it, the format not
        return None
    try:
        raw = bytes.fromhex(digits.tobytes().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if len(raw) != 4 * len(nl):  # fromhex skips whitespace
        return None
    return np.frombuffer(raw, ">u4").astype(np.uint32)


def _actual_crcs(lines: list[bytes], expected: np.ndarray) -> np.ndarray:
    """CRC32 of `line[:-19] + b"}"` for every line whose tail _expected_crcs read as
    `expected`: zlib over each whole line, no copy, then the tail undone in a few vectorized
    table look-ups (line_crc)."""
    return line_crc.body_crcs(line_crc.whole_line_crcs(lines), expected)


def _scan_values(arr: np.ndarray, nl: np.ndarray) -> np.ndarray | None:
    """Positions of the `:` after every `"rank"` key, or None unless every value in the lines
    is a plain JSON number (the `_crc` string apart).

    A value starts right after a `":` (a key's closing quote and the colon); a `":` inside a
    key can only add positions, which makes the test stricter, never looser.
    """
    colon = np.flatnonzero(arr == 58)
    colon = colon[(colon > 5) & (colon < len(arr) - 2)]
    colon = colon[arr[colon - 1] == 34]
    if (np.diff(colon) > _MAX_KEY_SPAN).any():
        return None  # a key may be longer than 200 characters: line by line
    before = arr[colon - 3]
    if ((arr[colon - 2] == 34) & ((before == 44) | (before == 123))).any():
        return None  # an empty key `"":`
    ends_k = colon[arr[colon - 2] == 107]  # keys ending in "k": candidates for "rank"
    rank = ends_k[(arr[ends_k[:, None] + _RANK_OFFSETS] == _RANK_KEY).all(axis=1)]
    nxt = arr[colon + 1]
    quoted = nxt == 34
    if not np.array_equal(colon[quoted], nl - 12):  # exactly one string a line: the CRC
        return None
    rest = nxt[~quoted]
    digit = (rest >= 48) & (rest <= 57)
    if digit.all():
        return rank
    minus = rest == 45
    if not (digit | minus).all():
        return None
    after = arr[colon[~quoted][minus] + 2]
    return rank if bool(((after >= 48) & (after <= 57)).all()) else None


def _parse_uints(arr: np.ndarray, pos: np.ndarray,
                 nl: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The JSON integers starting at `pos` (one per line, each followed by `,`) and the
    positions of those commas, or None if any is not a plain non-negative integer of at most
    18 digits (int64-safe)."""
    pos = pos.copy()
    end = np.zeros_like(pos)
    d = arr[pos].astype(np.int64) - 48
    if ((d < 0) | (d > 9)).any():
        return None
    val = d
    leading_zero = d == 0
    live = np.ones(len(pos), bool)
    for _ in range(18):
        pos += 1
        c = arr[np.minimum(pos, nl)]
        isd = live & (c >= 48) & (c <= 57)
        ended = live & ~isd
        if ended.any():
            if (c[ended] != 44).any():  # the value must be followed by ","
                return None
            end[ended] = pos[ended]
            live &= isd
            if not live.any():
                return val, end
        if (leading_zero & isd).any():  # "01": not JSON
            return None
        val = np.where(isd, val * 10 + (c.astype(np.int64) - 48), val)
    return None  # more than 18 digits


def _fast_steps(arr: np.ndarray, starts: np.ndarray, nl: np.ndarray) -> np.ndarray | None:
    """Steps of rows that all start with `{"step":<digits>,`; None otherwise."""
    heads = arr[starts[:, None] + _STEP_OFFSETS]
    if not (heads == _STEP_HEAD).all():
        return None
    parsed = _parse_uints(arr, starts + len(_STEP_PREFIX), nl)
    if parsed is None:
        return None
    steps, at = parsed
    # The step's digits end at a ",": then `"time":` must follow with a non-negative number.
    if not (arr[np.minimum(at[:, None] + _TIME_OFFSETS, nl[:, None])] == _TIME_KEY).all():
        return None
    if (arr[at + len(_TIME_KEY)] == 45).any():  # "-": a negative time, slow path says so
        return None
    return steps


def _fast_ranks(arr: np.ndarray, rank_colons: np.ndarray, nl: np.ndarray) -> np.ndarray | None:
    """The rank of every line when each line has exactly one `"rank":<uint>`; else None."""
    if len(rank_colons) != len(nl):
        return None
    if not np.array_equal(np.searchsorted(nl, rank_colons), np.arange(len(nl))):
        return None  # two in one line and none in another
    parsed = _parse_uints(arr, rank_colons + 1, nl)
    return None if parsed is None else parsed[0]


class JsonlChecker:
    """Feeds chunks of complete lines; keeps the state that spans chunks (last step per rank)."""

    def __init__(self, kind: str, run_id: str | None, rel: str) -> None:
        self.kind = kind
        self.out = _Collector(run_id, rel)
        self.stats = JsonlStats()
        self.last_step: dict[object, int] = {}
        self.descents = 0

    # -- fast path -------------------------------------------------------------------------
    def feed(self, chunk: bytes, first_lineno: int) -> int:
        """`chunk`: complete lines, each ending with b"\\n". Returns the number of lines."""
        lines = chunk.split(b"\n")
        lines.pop()  # after the final newline
        if lines:
            self._feed_lines(chunk, lines, first_lineno)
        return len(lines)

    def _feed_lines(self, chunk: bytes, lines: list[bytes], first: int) -> None:
        if self.kind == "metrics" and self._fast(chunk, lines, first):
            return
        if self.kind == "metrics" and len(lines) > _MIN_SPLIT:
            # One bad line must not send a whole 4 MiB chunk down the slow path: halve it;
            # halves are fed in order, so step continuity is kept.
            half = len(lines) // 2
            for part, at in ((lines[:half], first), (lines[half:], first + half)):
                self._feed_lines(b"\n".join(part) + b"\n", part, at)
            return
        for i, line in enumerate(lines):
            self._slow_line(line, first + i)

    def _fast(self, chunk: bytes, lines: list[bytes], first: int) -> bool:
        if b"\\" in chunk:  # escapes (e.g. control characters in names): check line by line
            return False
        arr = np.frombuffer(chunk, np.uint8)
        under = np.flatnonzero(arr[2:] == 95)  # `_` at under + 2
        if np.count_nonzero((arr[under + 1] == 34) & (arr[under] == 44)) != len(lines):
            return False  # a `,"_` key other than one `_crc` a line
        nl = np.flatnonzero(arr == 10)
        starts = np.empty_like(nl)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        if len(nl) != len(lines) or ((nl - starts) < len(_STEP_PREFIX) + _SUFFIX_LEN + 2).any():
            return False
        rank_colons = _scan_values(arr, nl)
        if rank_colons is None:
            return False
        ranks = None
        if len(rank_colons):
            ranks = _fast_ranks(arr, rank_colons, nl)
            if ranks is None:
                return False
        expected = _expected_crcs(arr, nl)
        if expected is None or not np.array_equal(expected, _actual_crcs(lines, expected)):
            return False
        steps = _fast_steps(arr, starts, nl)
        if steps is None:
            return False
        if ranks is None:
            self._check_steps(steps, first, None)
        else:
            self._check_ranked_steps(steps, ranks, first)
        self.stats.rows += len(lines)
        self._set_last(lines[-1])
        return True

    def _check_steps(self, steps: np.ndarray, first: int, rank: int | None) -> None:
        prev = self.last_step.get(rank)
        if prev is not None and steps[0] < prev:
            self._descent(first, int(steps[0]), prev)
        down = np.flatnonzero(steps[1:] < steps[:-1])
        for i in down[:MAX_PER_CODE]:
            self._descent(first + int(i) + 1, int(steps[i + 1]), int(steps[i]))
        for _ in down[MAX_PER_CODE:]:
            self.out.add("RT203", "", None)
        self.last_step[rank] = int(steps[-1])
        self._seen_max(int(steps.max()))

    def _seen_max(self, step: int) -> None:
        if self.stats.max_step is None or step > self.stats.max_step:
            self.stats.max_step = step

    def _check_ranked_steps(self, steps: np.ndarray, ranks: np.ndarray, first: int) -> None:
        """Steps must not go back within each rank; findings in line order."""
        order = np.lexsort((np.arange(len(steps)), ranks))  # by rank, then by line
        r, s = ranks[order], steps[order]
        same = r[1:] == r[:-1]
        down = np.flatnonzero(same & (s[1:] < s[:-1]))
        found = [(int(order[i + 1]), int(s[i + 1]), int(s[i])) for i in down]
        heads = np.flatnonzero(np.r_[True, ~same])  # first row of each rank in this chunk
        tails = np.r_[heads[1:] - 1, len(r) - 1]
        for h, t in zip(heads, tails, strict=True):
            rank = int(r[h])
            prev = self.last_step.get(rank)
            if prev is not None and s[h] < prev:
                found.append((int(order[h]), int(s[h]), prev))
            self.last_step[rank] = int(s[t])
        for line, step, prev in sorted(found):
            self._descent(first + line, step, prev)
        self._seen_max(int(s.max()))

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
            if is_torn_fragment(line):
                self.stats.torn_lines.append(lineno)
                size = len(line) - line.endswith(b"\n")
                self.out.add("RT209", f"torn line ({size} bytes, no _crc): a writer died "
                                      "mid-line, later rows follow", lineno)
            else:
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
        if self.kind == "metrics" and REWIND_KEY in row:
            # A run resumed from an older checkpoint: the writer's steps continue after this
            # step (docs/runs-format.md), so no descent is reported for the rows that follow.
            self.last_step[row.get("rank")] = row["step"]
            return
        self.stats.last_row = _restore(row)
        if self.kind == "metrics":
            rank = row.get("rank")
            step = row["step"]
            prev = self.last_step.get(rank)
            if prev is not None and step < prev:
                self._descent(lineno, step, prev)
            self.last_step[rank] = step
            self._seen_max(step)
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


def _is_uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _bad_name(key: str) -> bool:
    return not key or len(key) > 200 or any(c < " " or c == "\x7f" for c in key)


def check_metric_row(row: dict) -> tuple[str, str] | None:
    """The first problem of a decoded metric row (mirrors metric_row.v1.json), or None.
    `RT205` is not a problem of the row, it says the row holds non-finite values."""
    step = row.get("step")
    if not _is_uint(step):
        return "RT206", f"step must be an integer >= 0, got {step!r:.40}"
    t = row.get("time")
    if not _is_number(t) or not t >= 0:
        return "RT206", f"time must be a number >= 0, got {t!r:.40}"
    if "rank" in row and not _is_uint(row["rank"]):
        return "RT206", "rank must be an integer >= 0"
    declared = row.get("_nonfinite", [])
    if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared) \
            or ("_nonfinite" in row and not declared) or len(set(declared)) != len(declared):
        return "RT206", "_nonfinite must be a non-empty list of distinct metric names"
    for key, value in row.items():
        if _bad_name(key):
            return "RT206", f"invalid key {key!r:.60}"
        if key in ("step", "time", "rank", "_nonfinite"):
            continue
        if key == REWIND_KEY:
            if not _rewind_ok(value):
                return "RT206", "_rewind must be {\"from_step\": integer >= 0[, \"checkpoint\": name]}"
            continue
        if key.startswith("_"):
            return "RT206", f"unknown reserved key {key!r:.60}"
        if isinstance(value, str) and value in _NONFINITE:
            if key not in declared:
                return "RT204", f"{key!r:.60} is {value!r} but not listed in _nonfinite"
            continue
        if not _is_number(value):
            return "RT206", f"metric {key!r:.60} is not a number ({type(value).__name__})"
        if isinstance(value, float) and not math.isfinite(value):
            return "RT204", f"{key!r:.60} holds a raw {value!r} literal (not valid JSON)"
    for name in declared:
        value = row.get(name)
        if not (isinstance(value, str) and value in _NONFINITE):
            return "RT206", f"_nonfinite lists {name!r:.60} whose value is not non-finite"
    if declared:
        return "RT205", f"non-finite {', '.join(map(str, declared[:5]))} at step {step}"
    return None


REWIND_KEY = "_rewind"


def _rewind_ok(value: object) -> bool:
    return (isinstance(value, dict) and _is_uint(value.get("from_step"))
            and set(value) <= {"from_step", "checkpoint"}
            and isinstance(value.get("checkpoint", ""), str))


_EVENT_KEYS = frozenset({"time", "event", "rank", "pid", "detail"})


def _check_event(row: dict) -> tuple[str, str] | None:
    """The first problem of a decoded event (mirrors event.v1.json), or None."""
    t = row.get("time")
    if not _is_number(t) or not t >= 0:
        return "RT206", "event time must be a number >= 0"
    event = row.get("event")
    if not (isinstance(event, str) and event in _EVENTS):
        return "RT206", f"unknown event {event!r:.60}"
    extra = set(row) - _EVENT_KEYS
    if extra:
        return "RT206", f"unknown event keys {sorted(extra)!r:.80}"
    if "rank" in row and not _is_uint(row["rank"]):
        return "RT206", "event rank must be an integer >= 0"
    if "pid" in row and not (isinstance(row["pid"], int) and not isinstance(row["pid"], bool)):
        return "RT206", "event pid must be an integer"
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
                chunk_size: int | None = None,
                digest_limit: int | None = None) -> tuple[list[Finding], JsonlStats]:
    """Check one JSONL file. `live`: the run's heartbeat is fresh (a torn tail is in flight).
    With `digest_limit`, the SHA-256 of the file's first `digest_limit` bytes (fewer when the
    file is shorter) is taken from the same reads (stats.prefix_bytes / prefix_sha256), for
    the manifest's record of the file.

    Reads with O_NOFOLLOW; the caller has already refused symlinks, this closes the race.
    Raises OSError if the file cannot be opened or read.
    """
    checker = JsonlChecker(kind, run_id, rel)
    chunk_size = chunk_size or CHUNK
    digest = None if digest_limit is None else hashlib.sha256()
    hashed = 0
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
            if digest is not None and hashed < digest_limit:  # type: ignore[operator]
                part = block if len(block) <= digest_limit - hashed else block[:digest_limit - hashed]
                digest.update(part)
                hashed += len(part)
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
            lineno += checker.feed(complete, lineno)
            offset += len(complete)
        if carry:  # (an over-long tail was reported above and is never "torn")
            checker.torn(offset, lineno, live, len(carry))
    finally:
        os.close(fd)
    checker.stats.last_steps = dict(checker.last_step)
    if digest is not None:
        checker.stats.prefix_bytes, checker.stats.prefix_sha256 = hashed, digest.hexdigest()
    return checker.finish(), checker.stats
