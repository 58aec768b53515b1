"""Is a piece of text the beginning of a compact JSON object that was cut short?

Used to recognise torn JSONL lines (docs/runs-format.md, "Torn lines"): the store writes
every row as compact JSON (no whitespace), so the bytes a writer leaves when it dies
mid-line are a *proper prefix* of such a text. Anything else (a complete object, a wrong
character, whitespace, text after the closing brace) is not a torn line.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_ESCAPES = frozenset('"\\/bfnrtu')
_HEX = frozenset("0123456789abcdefABCDEF")
_LITERALS = ("true", "false", "null")
_MAX_DEPTH = 64


class _End(Exception):
    """The text ran out: everything so far was valid."""


class _Bad(Exception):
    """The text cannot be the beginning of a compact JSON object."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def peek(self) -> str:
        if self.i >= len(self.s):
            raise _End
        return self.s[self.i]

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise _Bad
        self.i += 1

    def value(self, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _Bad
        c = self.peek()
        if c == "{":
            self.container("}", depth, keyed=True)
        elif c == "[":
            self.container("]", depth, keyed=False)
        elif c == '"':
            self.string()
        elif c in _NUMBER_CHARS:
            self.number()
        else:
            self.literal()

    def container(self, close: str, depth: int, keyed: bool) -> None:
        self.i += 1  # the opening bracket
        if self.peek() == close:
            self.i += 1
            return
        while True:
            if keyed:
                if self.peek() != '"':
                    raise _Bad
                self.string()
                self.expect(":")
            self.value(depth + 1)
            c = self.peek()
            self.i += 1
            if c == close:
                return
            if c != ",":
                raise _Bad

    def string(self) -> None:
        self.i += 1  # the opening quote
        while True:
            c = self.peek()
            self.i += 1
            if c == '"':
                return
            if c < " ":
                raise _Bad  # control characters are always escaped
            if c == "\\":
                e = self.peek()
                self.i += 1
                if e not in _ESCAPES:
                    raise _Bad
                if e == "u":
                    for _ in range(4):
                        if self.peek() not in _HEX:
                            raise _Bad
                        self.i += 1

    def number(self) -> None:
        j = self.i
        while j < len(self.s) and self.s[j] in _NUMBER_CHARS:
            j += 1
        token = self.s[self.i:j]
        self.i = j
        if j == len(self.s):
            # Every proper prefix of a JSON number can be completed with a digit.
            if _NUMBER.fullmatch(token) or _NUMBER.fullmatch(token + "0"):
                raise _End
            raise _Bad
        if not _NUMBER.fullmatch(token):
            raise _Bad

    def literal(self) -> None:
        rest = self.s[self.i:self.i + 5]
        for word in _LITERALS:
            if rest.startswith(word):
                self.i += len(word)
                return
            if word.startswith(rest) and self.i + len(rest) == len(self.s):
                raise _End
        raise _Bad


def is_object_prefix(text: str) -> bool:
    """True iff `text` is non-empty, is not a complete JSON object, and some continuation makes
    it one in compact form (no whitespace between tokens)."""
    if not text.startswith("{"):
        return False
    parser = _Parser(text)
    try:
        parser.value(0)
    except _End:
        return True
    except _Bad:
        return False
    return False  # a complete object (with or without text after it) was not cut short
