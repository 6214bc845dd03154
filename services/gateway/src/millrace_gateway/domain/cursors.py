"""Cursors for lists ordered newest first: an opaque token that names the last row a page showed (its
time and id), so the next page starts right after it even while new rows arrive (offsets shift then).
Pure."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from millrace_common.platform.refusals import FieldProblem, Refused


class InvalidCursor(Refused):
    status = 422
    code = "invalid_request"

    def __init__(self) -> None:
        super().__init__(
            "the request is not valid",
            FieldProblem("/query/cursor", "not a cursor this list gave out; start again without it"),
        )


@dataclass(frozen=True)
class Cursor:
    """The last row shown: its sort time and its id (the tie-breaker)."""

    at: datetime
    id: str


def encode(cursor: Cursor) -> str:
    raw = json.dumps([cursor.at.isoformat(), cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> Cursor:
    """The cursor ``token`` names; :class:`InvalidCursor` for anything :func:`encode` did not make."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, ident = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise InvalidCursor() from error
    if not isinstance(ident, str) or moment.tzinfo is None:
        raise InvalidCursor()
    return Cursor(moment, ident)
