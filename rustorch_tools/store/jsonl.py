"""Self-checking JSONL lines: `{...,"_crc":"%08x"}` (docs/runs-format.md).

The CRC32 covers the compact JSON of the row without `_crc`, exactly as written, so a reader
checks the bytes it read and never re-serializes.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from ..errors import CorruptLineError
from . import fastjson
from .json_prefix import is_object_prefix

CRC_KEY = "_crc"
NONFINITE_KEY = "_nonfinite"
_CRC_TAIL_RE = re.compile(rb',"_crc":"([0-9a-f]{8})"\}$')
_NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_orjson_dumps = orjson.dumps
_SCALARS = frozenset((str, int, float, bool, type(None)))  # finite floats: checked above
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def nonfinite_text(value: float) -> str:
    """The string a non-finite float is stored as: "nan", "inf" or "-inf"."""
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def encode_row(row: dict[str, Any]) -> bytes:
    """One complete line (ending in b"\\n") for `row`.

    Top-level non-finite floats are stored as "nan" / "inf" / "-inf" and their keys listed in
    `_nonfinite` (kept, never dropped). Raises ValueError for an empty row, a `_crc` key, or
    a value that is not JSON-serializable (including NaN nested inside a value).
    """
    if not row:
        raise ValueError("a JSONL row must have at least one key")
    if CRC_KEY in row:
        raise ValueError(f"a row must not carry its own {CRC_KEY!r} key")
    flagged: list[str] | None = None
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            if flagged is None:
                flagged = []
            flagged.append(key)
    if flagged:
        row = dict(row)
        for key in flagged:
            row[key] = nonfinite_text(row[key])
        previous = row.get(NONFINITE_KEY) or []
        row[NONFINITE_KEY] = list(dict.fromkeys([*previous, *flagged]))
    if all(type(v) in _SCALARS for v in row.values()):
        try:  # orjson, as NumberRowEncoder: the two give the same bytes for the same row
            return frame_body(_orjson_dumps(row))
        except TypeError:
            pass  # an int beyond 64 bits or a non-string key: the json module decides
    try:
        body = _ENCODER.encode(row)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"row is not JSON-serializable ({exc}): {row!r:.200}") from exc
    return frame_body(body.encode())


class NumberRowEncoder:
    """Fast encode_row for metric rows whose values are all finite `int`/`float`.

    One orjson call per row (compact JSON, the shortest float text that round-trips), then
    the CRC frame. Integers beyond 64 bits, which orjson refuses, take the %-format path
    (the json module's text, `repr` of the numbers).
    """

    def __init__(self, head: dict[str, int] | None = None) -> None:
        self._head_dict = dict(head or {})
        head_text = "".join(f",{json.dumps(k)}:{v!r}" for k, v in self._head_dict.items())
        self._head = head_text.replace("%", "%%")
        self._formats: dict[tuple[str, ...], str] = {}

    def encode(self, step: int, when: float, metrics: dict[str, int | float]) -> bytes:
        try:
            return frame_body(_orjson_dumps({"step": step, "time": when, **self._head_dict, **metrics}))
        except TypeError:  # an int beyond 64 bits
            return self._encode_text(step, when, metrics)

    def _encode_text(self, step: int, when: float, metrics: dict[str, int | float]) -> bytes:
        keys = tuple(metrics)
        fmt = self._formats.get(keys)
        if fmt is None:
            names = "".join("," + json.dumps(k, ensure_ascii=False).replace("%", "%%") + ":%r" for k in keys)
            fmt = '{"step":%r,"time":%r' + self._head + names + "}"
            self._formats[keys] = fmt
        return frame_body((fmt % (step, when, *metrics.values())).encode())


def frame_body(body: bytes) -> bytes:
    """`body` (a compact JSON object, not `{}`) with its `_crc` key and newline added."""
    return b'%s,"_crc":"%08x"}\n' % (body[:-1], zlib.crc32(body))


def decode_line(line: bytes) -> dict[str, Any]:
    """The row stored in `line` (trailing newline optional), `_crc` removed.

    Raises CorruptLineError(reason) when the CRC is missing or wrong or the JSON is bad.
    Non-finite values stay as strings; see restore_nonfinite.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    match = _CRC_TAIL_RE.search(line)
    if match is None:
        raise CorruptLineError("missing or malformed _crc field")
    body = line[: match.start()] + b"}"
    expected = match.group(1).decode()
    actual = f"{zlib.crc32(body):08x}"
    if actual != expected:
        raise CorruptLineError(f"CRC mismatch (stored {expected}, computed {actual})")
    try:
        row = fastjson.loads(body)
    except (UnicodeDecodeError, ValueError):
        row = _lenient_row(body)  # NaN / Infinity literals decode, to be reported as such
    if not isinstance(row, dict):
        raise CorruptLineError(f"line is a JSON {type(row).__name__}, not an object")
    return row


def _lenient_row(body: bytes) -> Any:
    """The stdlib decoder, which accepts NaN/Infinity literals, for a line orjson refused;
    anything it refuses too (deep nesting, bad UTF-8, huge numbers) is a corrupt line."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptLineError(f"bad JSON: {str(exc)[:200]}") from None


def is_torn_fragment(line: bytes) -> bool:
    """True iff `line` (its newline optional) is what a writer killed mid-line leaves.

    Precisely: the bytes, with a multi-byte UTF-8 character allowed to be cut at the very
    end, are non-empty, fail `decode_line`, and are a proper prefix of a compact JSON object
    (json_prefix.is_object_prefix), i.e. some continuation turns them into a line the store
    could have written. A complete line that fails its CRC, or any other damage, is not.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    if not line.startswith(b"{") or _CRC_TAIL_RE.search(line):
        return False  # a line ending in a CRC tail was written whole: damage, not a tear
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.end != len(line):
            return False
        text = line[: exc.start].decode()
    return is_object_prefix(text)


def restore_nonfinite(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of `row` with the values listed in `_nonfinite` turned back into floats.

    `_nonfinite` itself is kept so that callers still see which values were flagged.
    """
    names = row.get(NONFINITE_KEY)
    if not names:
        return row
    out = dict(row)
    for name in names:
        value = out.get(name)
        if isinstance(value, str) and value in _NONFINITE_TEXT:
            out[name] = _NONFINITE_TEXT[value]
    return out


@dataclass(frozen=True, slots=True)
class LineResult:
    """One line of a JSONL file as `scan` found it.

    `row` is set for a valid complete line, `error` otherwise. `complete` is False for a last
    line without a trailing newline: being written when the run is live, torn otherwise.
    """

    lineno: int
    offset: int
    row: dict[str, Any] | None
    error: str | None
    complete: bool


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for reading if it is a regular file. A link (ELOOP), a FIFO, socket or
    device (EINVAL) raises OSError at once: a reader never follows a planted link and never
    blocks on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (FIFO, socket or device)", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def scan(path: str | os.PathLike[str]) -> Iterator[LineResult]:
    """Every line of `path`, streamed, with its 1-based number and byte offset.

    A missing file yields nothing. Empty lines are reported as corrupt: writers never emit them.
    A link or special file raises OSError (open_regular).
    """
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        return
    with fh:
        offset = 0
        for lineno, line in enumerate(fh, start=1):
            complete = line.endswith(b"\n")
            if not complete:
                yield LineResult(lineno, offset, None, "no trailing newline (being written or torn)", False)
            else:
                try:
                    yield LineResult(lineno, offset, decode_line(line), None, True)
                except CorruptLineError as exc:
                    yield LineResult(lineno, offset, None, exc.reason, True)
            offset += len(line)


def iter_valid_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The rows of the complete, valid lines of `path` (fast path: no LineResult objects)."""
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                continue
            try:
                yield decode_line(line)
            except CorruptLineError:
                continue
