"""One page of a list: the rows, and where the next page starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.cursors import Cursor, InvalidCursor, encode


@dataclass(frozen=True)
class Page:
    items: Sequence[Row]
    next_offset: int | None
    """None on the last page."""
    next_cursor: str | None = None
    """Where the next page starts (keyset pages); None on the last page."""


async def fetch_page(connection: AsyncConnection, query: Select, *, limit: int, offset: int) -> Page:
    # One row more than asked for tells whether another page follows, without counting.
    rows = (await connection.execute(query.limit(limit + 1).offset(offset))).all()
    return Page(rows[:limit], offset + limit if len(rows) > limit else None)


async def fetch_keyset_page(
    connection: AsyncConnection,
    query: Select,
    *,
    at: ColumnElement,
    ident: ColumnElement,
    limit: int,
    offset: int,
    after: Cursor | None,
) -> Page:
    """A page of ``query`` ordered by ``at`` (newest first), then ``ident``: after the row ``after``
    names (a cursor) or, for callers that still page by offset, from ``offset``. Either way the answer
    says both where the next page starts by offset and by cursor."""
    query = query.order_by(at.desc(), ident)
    if after is not None:
        try:
            last_id = ident.type.python_type(after.id)
        except ValueError as error:
            raise InvalidCursor() from error
        query = query.where(or_(at < after.at, and_(at == after.at, ident > last_id)))
        offset = 0
    rows = (await connection.execute(query.limit(limit + 1).offset(offset))).all()
    if len(rows) <= limit:
        return Page(rows, None, None)
    last = rows[limit - 1]
    next_cursor = encode(Cursor(last._mapping[at.key], str(last._mapping[ident.key])))
    return Page(rows[:limit], None if after is not None else offset + limit, next_cursor)
