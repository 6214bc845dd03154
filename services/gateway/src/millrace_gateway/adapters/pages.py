"""One page of a list: the rows, and where the next page starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Page:
    items: Sequence[Row]
    next_offset: int | None
    """None on the last page."""


async def fetch_page(connection: AsyncConnection, query: Select, *, limit: int, offset: int) -> Page:
    # One row more than asked for tells whether another page follows, without counting.
    rows = (await connection.execute(query.limit(limit + 1).offset(offset))).all()
    return Page(rows[:limit], offset + limit if len(rows) > limit else None)
