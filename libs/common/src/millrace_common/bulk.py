"""Many rows in one statement: the rows travel as one JSON document and PostgreSQL unpacks them
with ``jsonb_to_recordset``.

An ``executemany`` costs a statement execution (and its Python-side parameter handling) per row; a
hot path that writes a batch of messages' rows pays that dozens of times a message. Arrays as
parameters are no better in text format (the driver escapes every element in Python). One JSON
document is built by the C JSON encoder, values already serialised as JSON (events) are spliced in
as they are, and the statement's text depends only on the table and the columns, so PostgreSQL
prepares it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, LargeBinary, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

_DIALECT = postgresql.dialect()
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonText(str):
    """A value already serialised as JSON (e.g. by pydantic), written to a JSONB column as it is."""


def _record_type(column: Column) -> str:
    if isinstance(column.type, JSONB):
        return "jsonb"
    if isinstance(column.type, LargeBinary):
        return "text"
    return column.type.compile(dialect=_DIALECT)


def _select_expression(column: Column) -> str:
    if isinstance(column.type, LargeBinary):
        return f"decode(t.{column.name}, 'hex')"
    return f"t.{column.name}"


def _json_value(value: object) -> str:
    if isinstance(value, JsonText):
        return value
    if isinstance(value, (UUID, datetime)):
        return f'"{value.isoformat() if isinstance(value, datetime) else value}"'
    if isinstance(value, bytes):
        return f'"{value.hex()}"'
    return _encode(value)


def _document(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    names = [_encode(name) for name in columns]
    return "[" + ",".join(
        "{" + ",".join(f"{name}:{_json_value(row[column])}" for name, column in zip(names, columns, strict=True)) + "}"
        for row in rows
    ) + "]"


def _recordset(table: Table, columns: Sequence[str], param: str) -> str:
    definitions = ", ".join(f"{name} {_record_type(table.c[name])}" for name in columns)
    return (
        f"rows from (jsonb_to_recordset(cast(:{param} as jsonb)) as ({definitions})) "
        f"with ordinality as t({', '.join(columns)}, row_number)"
    )


@dataclass(frozen=True)
class Write:
    """One data-modifying statement: its SQL and its parameters."""

    sql: str
    params: dict[str, Any]


def rows_document(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (each with the same keys) as the JSON document ``jsonb_to_recordset`` reads."""
    return _document(list(rows[0]), rows) if rows else "[]"


def insert_write(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    param: str = "rows",
    conflict_keys: Sequence[str] | None = None,
    update_on_conflict: Iterable[str] = (),
    returning: str | None = None,
) -> Write:
    """Insert ``rows`` (each with the same keys) in their order. With ``conflict_keys``, a row whose
    key exists updates the ``update_on_conflict`` columns instead (or is skipped when there are
    none)."""
    columns = list(rows[0])
    selected = ", ".join(_select_expression(table.c[name]) for name in columns)
    sql = (
        f"insert into {table.name} ({', '.join(columns)}) "
        f"select {selected} from {_recordset(table, columns, param)} order by t.row_number"
    )
    if conflict_keys is not None:
        updates = [f"{name} = excluded.{name}" for name in update_on_conflict]
        action = f"do update set {', '.join(updates)}" if updates else "do nothing"
        sql += f" on conflict ({', '.join(conflict_keys)}) {action}"
    if returning:
        sql += f" returning {returning}"
    return Write(sql, {param: _document(columns, rows)})


def update_write(table: Table, key: str, rows: Sequence[Mapping[str, Any]], *, param: str = "rows") -> Write:
    """Update each row found by ``key`` (every row of ``rows`` has that key and the same columns)."""
    columns = list(rows[0])
    assignments = ", ".join(f"{name} = {_select_expression(table.c[name])}" for name in columns if name != key)
    recordset = _recordset(table, columns, param)
    sql = f"update {table.name} set {assignments} from {recordset} where {table.name}.{key} = t.{key}"
    return Write(sql, {param: _document(columns, rows)})


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_keys: Sequence[str] | None = None,
    update_on_conflict: Iterable[str] = (),
    returning: str | None = None,
) -> list[Any]:
    """``insert_write`` executed; returns the ``returning`` column of the rows written, when asked."""
    if not rows:
        return []
    write = insert_write(
        table, rows, conflict_keys=conflict_keys, update_on_conflict=update_on_conflict, returning=returning
    )
    result = await connection.execute(text(write.sql), write.params)
    return list(result.scalars()) if returning else []


async def execute_together(connection: AsyncConnection, writes: Sequence[Write]) -> None:
    """Run the writes as one statement (one round trip), each a data-modifying ``with`` clause.

    PostgreSQL runs every clause against the tables as they were before the statement, in no set
    order, and does not support two clauses changing the same row: the caller keeps the writes'
    rows apart (see the orchestrator's projection fold, which is built to)."""
    if not writes:
        return
    if len(writes) == 1:
        await connection.execute(text(writes[0].sql), writes[0].params)
        return
    clauses = ", ".join(f"w{index} as ({write.sql})" for index, write in enumerate(writes))
    params: dict[str, Any] = {}
    for write in writes:
        assert not params.keys() & write.params.keys(), "each write needs its own parameter names"
        params.update(write.params)
    await connection.execute(text(f"with {clauses} select 1"), params)
