"""Many rows in one statement: the rows travel as one JSON document and PostgreSQL unpacks them
with ``jsonb_to_recordset``.

An ``executemany`` costs a statement execution (and its Python-side parameter handling) per row; a
hot path that writes a batch of messages' rows pays that dozens of times a message. Arrays as
parameters are no better in text format (the driver escapes every element in Python). One JSON
document is built by the C JSON encoder (JSONB columns travel inside it as JSON text), and the
statement's text depends only on the table and the columns, so it is built once and PostgreSQL
prepares it once.
"""

from __future__ import annotations

import functools
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


def _plain(value: object) -> object:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not a column value")


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode


def _record_type(column: Column) -> str:
    if isinstance(column.type, (JSONB, LargeBinary)):
        return "text"
    return column.type.compile(dialect=_DIALECT)


def _select_expression(column: Column) -> str:
    if isinstance(column.type, LargeBinary):
        return f"decode(t.{column.name}, 'hex')"
    if isinstance(column.type, JSONB):
        return f"cast(t.{column.name} as jsonb)"
    return f"t.{column.name}"


def _as_json_text(value: object) -> object:
    return None if value is None else _encode(value)


def _document(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a JSON array of objects, by the C encoder: JSONB columns travel as JSON text, bytes
    as hex, UUIDs and times as strings."""
    json_columns = [name for name in columns if isinstance(table.c[name].type, JSONB)]
    if json_columns:
        rows = [{**row, **{name: _as_json_text(row[name]) for name in json_columns}} for row in rows]
    return _encode(rows)


@functools.lru_cache(maxsize=512)
def _recordset(table: Table, columns: tuple[str, ...], param: str) -> str:
    definitions = ", ".join(f"{name} {_record_type(table.c[name])}" for name in columns)
    return (
        f"rows from (jsonb_to_recordset(cast(:{param} as jsonb)) as ({definitions})) "
        f"with ordinality as t({', '.join(columns)}, row_number)"
    )


@dataclass(frozen=True)
class Write:
    """One data-modifying statement (or a ``select`` that later ones read by ``name``): its SQL and
    its parameters."""

    sql: str
    params: dict[str, Any]
    name: str | None = None


def rows_document(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (each with the same keys) as the JSON document ``jsonb_to_recordset`` reads, for a record
    type the caller writes (JSON values stay JSON)."""
    return _encode(rows)


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
    columns = tuple(rows[0])
    keys = tuple(conflict_keys) if conflict_keys is not None else None
    sql = _insert_sql(table, columns, param, keys, tuple(update_on_conflict), returning)
    return Write(sql, {param: _document(table, columns, rows)})


@functools.lru_cache(maxsize=512)
def _insert_sql(
    table: Table,
    columns: tuple[str, ...],
    param: str,
    conflict_keys: tuple[str, ...] | None,
    update_on_conflict: tuple[str, ...],
    returning: str | None,
) -> str:
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
    return sql


def update_write(table: Table, key: str, rows: Sequence[Mapping[str, Any]], *, param: str = "rows") -> Write:
    """Update each row found by ``key`` (every row of ``rows`` has that key and the same columns)."""
    columns = tuple(rows[0])
    return Write(_update_sql(table, key, columns, param), {param: _document(table, columns, rows)})


@functools.lru_cache(maxsize=512)
def _update_sql(table: Table, key: str, columns: tuple[str, ...], param: str) -> str:
    assignments = ", ".join(
        f"{name} = {_select_expression(table.c[name])}" for name in columns if name != key
    )
    recordset = _recordset(table, columns, param)
    # The keys again, as an array the key's index is probed with: joined only to the document's rows,
    # a table the statistics believe tiny (analyzed while nearly empty, grown since) was read whole
    # for each update (a hash join); with the array it reads the rows it updates, whatever the plan.
    keys = f"array(select t.{key} from {_recordset(table, (key,), param)})"
    return (
        f"update {table.name} set {assignments} from {recordset} "
        f"where {table.name}.{key} = t.{key} and {table.name}.{key} = any({keys})"
    )


def together(writes: Sequence[Write], *, ids_of: Sequence[int] = (), checks: Sequence[int] = ()) -> Write:
    """The writes as one statement (one round trip, one transaction even in autocommit), each a
    data-modifying ``with`` clause. With ``ids_of``, the statement returns the ``id`` column of the
    rows those writes returned (their SQL ends in ``returning id``), comma-separated, as the last
    column. ``checks`` are
    selects of one boolean column ``ok`` that raise when a condition fails (``millrace_ensure``):
    the statement evaluates them (a ``select`` clause nothing reads is never run), and one that
    raises undoes every write.

    PostgreSQL runs every clause against the tables as they were before the statement, in no set
    order, and does not support two clauses changing the same row: the caller keeps the writes'
    rows apart (see the orchestrator's projection fold, which is built to)."""
    if not writes:
        raise ValueError("nothing to write")
    if len(writes) == 1 and not ids_of and not checks and writes[0].name is None:
        return writes[0]
    names = [write.name or f"w{index}" for index, write in enumerate(writes)]
    clauses = ", ".join(f"{name} as ({write.sql})" for name, write in zip(names, writes, strict=True))
    params: dict[str, Any] = {}
    for write in writes:
        assert not params.keys() & write.params.keys(), "each write needs its own parameter names"
        params.update(write.params)
    # The checks come first: a check that raises then does so before the main query asks the
    # clauses whose rows it returns for them (every other clause runs after the main query).
    columns = [f"(select bool_and(ok) from {names[i]})" for i in checks]
    if ids_of:
        sources = " union all ".join(f"select id from {names[i]}" for i in ids_of)
        columns.append(f"(select coalesce(string_agg(cast(id as text), ','), '') from ({sources}) as ids)")
    result = f"select {', '.join(columns) or '1'}"
    return Write(f"with {clauses} {result}", params)


async def execute_together(connection: AsyncConnection, writes: Sequence[Write]) -> None:
    """``together(writes)`` executed on a SQLAlchemy connection."""
    if writes:
        write = together(writes)
        await connection.execute(text(write.sql), write.params)
