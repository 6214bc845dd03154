"""How deep a JSON text nests, counted as it streams in, so a body nested too deep is refused before a
parser recurses into it.

Python's ``json`` module and pydantic recurse once per level: a body nested a few hundred levels deep
raises ``RecursionError`` (or pydantic's recursion limit) somewhere in the stack that handles it, and
every message that carries it further (Kafka, the run log) would have to be parsed again. So every
JSON body any service reads may nest at most :data:`MAX_JSON_DEPTH` levels (``{"a": [1]}`` is 2),
which is twice what a workflow definition may nest and well within what every parser downstream takes.

:class:`DepthScanner` counts without recursion and in linear time: each chunk is scanned a constant number
of times by C code (string literals are cut out with one regular expression, the brackets that remain are
kept by ``bytes.translate`` and summed by ``itertools.accumulate``), and the state between chunks is four
numbers. ``millrace_common.platform.json_body.JsonDepthLimit`` is the ASGI middleware every service
installs (``millrace_common.platform.problems.install_problem_handlers``): it scans ``application/json``
and ``application/*+json`` bodies while the application reads them, and raises ``JsonTooDeep`` (400
``invalid_body``, pointer ``/body``) at the first chunk that goes too deep, so nothing has parsed it.
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["MAX_JSON_DEPTH", "DepthScanner", "depth_detail", "too_deep"]

MAX_JSON_DEPTH = 64
"""Objects and arrays inside each other, at most, in any JSON body (the outermost one is level 1)."""

_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
_BACKSLASH = ord("\\")


class DepthScanner:
    """Counts the nesting of a JSON text fed in chunks; :meth:`feed` says False once it is too deep.

    Brackets inside string literals do not count, whichever chunks a literal is split across. Text
    that is not JSON is counted all the same (a parser refuses it later): the count never says a
    text is shallower than the prefix a parser would accept before failing.
    """

    __slots__ = ("_escaped", "_in_string", "deepest", "depth", "limit")

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self.deepest = 0
        self._in_string = False
        self._escaped = False  # the text so far ends inside a string, on a backslash

    @property
    def within(self) -> bool:
        return self.deepest <= self.limit

    def feed(self, chunk: bytes) -> bool:
        """Count ``chunk``, the text's next bytes; False when the text so far nests too deep."""
        if not self.within:
            return False
        start = 0
        if self._in_string:
            if self._escaped and chunk:
                start, self._escaped = 1, False
            end = _STRING_REST.match(chunk, start).end()  # type: ignore[union-attr] - it matches ""
            if end == len(chunk):
                return True
            if chunk[end] == _BACKSLASH:  # a backslash at the very end: its character comes next
                self._escaped = True
                return True
            self._in_string = False
            start = end + 1
        rest = _STRING_LITERAL.sub(b"", chunk[start:] if start else chunk)
        # A quote left over opens a string this chunk does not close (a closed one was cut out above).
        opening = rest.find(b'"')
        if opening >= 0:
            rest = rest[:opening]
            self._in_string = True
            trailing = len(chunk) - len(chunk.rstrip(b"\\"))
            self._escaped = trailing % 2 == 1
        brackets = rest.translate(None, _NOT_BRACKETS)
        if brackets:
            self.deepest = max(
                self.deepest, max(accumulate(map(_BRACKET_STEP.__getitem__, brackets), initial=self.depth))
            )
            opened = brackets.count(b"[") + brackets.count(b"{")
            self.depth += opened - (len(brackets) - opened)
        return self.within


def too_deep(data: bytes | bytearray | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a whole JSON text nests deeper than ``limit``."""
    scanner = DepthScanner(limit)
    return not scanner.feed(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data))


def depth_detail(limit: int = MAX_JSON_DEPTH) -> str:
    return f"JSON nested more than {limit} levels deep; the limit is {limit}"
