"""Many rows in one statement: the columns travel as arrays and PostgreSQL unnests them.

An ``executemany`` costs a statement execution (and its Python-side parameter handling) per row;
a hot path that writes a batch of messages' rows pays that dozens of times a message. Here a batch
is one statement whose text depends only on the table and the columns, so PostgreSQL prepares it
once and the per-row cost is an array element.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

_DIALECT = postgresql.dialect()


class JsonText(str):
    """A value already serialised as JSON (e.g. by pydantic), written to a JSONB column as it is."""


def _array_type(column: Column) -> str:
    return "text[]" if isinstance(column.type, JSONB) else f"{column.type.compile(dialect=_DIALECT)}[]"


def _select_expression(column: Column) -> str:
    return f"cast(t.{column.name} as jsonb)" if isinstance(column.type, JSONB) else f"t.{column.name}"


def _json(value: object) -> str | None:
    if value is None or isinstance(value, JsonText):
        return value
    return json.dumps(value, separators=(",", ":"))


def _arrays(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    arrays = {}
    for index, name in enumerate(columns):
        values = [row[name] for row in rows]
        arrays[f"c{index}"] = [_json(v) for v in values] if isinstance(table.c[name].type, JSONB) else values
    return arrays


def _unnest(table: Table, columns: Sequence[str]) -> str:
    casts = ", ".join(f"cast(:c{i} as {_array_type(table.c[name])})" for i, name in enumerate(columns))
    return f"unnest({casts}) with ordinality as t({', '.join(columns)}, row_number)"


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_keys: Sequence[str] | None = None,
    update_on_conflict: Iterable[str] = (),
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` (each with the same keys) in their order. With ``conflict_keys``, a row whose
    key exists updates the ``update_on_conflict`` columns instead (or is skipped when there are
    none). Returns the ``returning`` column of the rows written, when asked."""
    if not rows:
        return []
    columns = list(rows[0])
    selected = ", ".join(_select_expression(table.c[name]) for name in columns)
    sql = (
        f"insert into {table.name} ({', '.join(columns)}) "
        f"select {selected} from {_unnest(table, columns)} order by t.row_number"
    )
    if conflict_keys is not None:
        updates = [f"{name} = excluded.{name}" for name in update_on_conflict]
        action = f"do update set {', '.join(updates)}" if updates else "do nothing"
        sql += f" on conflict ({', '.join(conflict_keys)}) {action}"
    if returning:
        sql += f" returning {returning}"
    result = await connection.execute(text(sql), _arrays(table, columns, rows))
    return list(result.scalars()) if returning else []


async def update_rows(
    connection: AsyncConnection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Update each row found by ``key`` (every row of ``rows`` has that key and the same columns)."""
    if not rows:
        return
    columns = list(rows[0])
    assignments = ", ".join(f"{name} = {_select_expression(table.c[name])}" for name in columns if name != key)
    sql = (
        f"update {table.name} set {assignments} from {_unnest(table, columns)} "
        f"where {table.name}.{key} = t.{key}"
    )
    await connection.execute(text(sql), _arrays(table, columns, rows))
