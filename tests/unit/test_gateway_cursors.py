"""Cursors of the newest-first lists (runs, records): what encode makes, decode reads back; anything
else is a 422 naming the cursor, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_gateway.domain.cursors import Cursor, InvalidCursor, decode, encode

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda m: m + timedelta(microseconds=0))


@given(at=moments, ident=st.text(max_size=60))
def test_a_cursor_reads_back_as_it_was_made(at: datetime, ident: str) -> None:
    token = encode(Cursor(at, ident))
    assert decode(token) == Cursor(at, ident)
    assert token.isascii() and "=" not in token  # safe in a query string as it is


@given(st.text(max_size=80))
def test_anything_else_is_refused_as_an_invalid_cursor_or_read(token: str) -> None:
    try:
        cursor = decode(token)
    except InvalidCursor as refused:
        assert refused.status == 422
        assert [p.pointer for p in refused.problems] == ["/query/cursor"]
    else:
        assert cursor.at.tzinfo is not None


@pytest.mark.parametrize(
    "token", ["", "not a cursor", "WzEsMl0", encode(Cursor(datetime(2026, 1, 1, tzinfo=UTC), "x"))[:-3]]
)
def test_malformed_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursor):
        decode(token)


def test_a_cursor_without_a_time_zone_is_refused() -> None:
    import base64

    naive = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00","x"]').decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        decode(naive)
