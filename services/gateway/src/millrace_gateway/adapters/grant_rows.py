"""What the grant tables (``producer_grants``, ``topic_grants``) share: a grant is a row whose whole
primary key is the grant, added once, removed once, listed in key order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Row, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_once(connection: AsyncConnection, table: Table, values: Mapping[str, object]) -> bool:
    """Insert the row; False when a row with its key was there already."""
    added = await connection.execute(
        pg_insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    )
    return added.first() is not None


async def delete_one(connection: AsyncConnection, table: Table, key: Mapping[str, object]) -> bool:
    """Delete the row with ``key``; False when there was none."""
    gone = await connection.execute(
        delete(table)
        .where(*(table.c[name] == value for name, value in key.items()))
        .returning(*table.primary_key.columns)
    )
    return gone.first() is not None


async def listed(
    connection: AsyncConnection, table: Table, *, order: Sequence[str], where: Mapping[str, object | None]
) -> list[Row]:
    """The rows in ``order``, those matching each ``where`` value that is not None."""
    query = select(table).order_by(*(table.c[name] for name in order))
    for name, value in where.items():
        if value is not None:
            query = query.where(table.c[name] == value)
    return list((await connection.execute(query)).all())
