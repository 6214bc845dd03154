"""Plain psycopg connections for hot paths.

SQLAlchemy's async engine costs about a millisecond of CPU per statement (its greenlet bridge,
compilation cache lookups and result wrapping), more than PostgreSQL spends running the orchestrator's
statements. A hot path that needs only a few statements of its own text per message batch takes
a connection from here instead: psycopg in autocommit mode, so each statement is its own transaction
and costs one round trip, with no ``BEGIN`` or ``COMMIT`` of its own. Whatever must be atomic is
therefore written as one statement (see :func:`millrace_common.platform.bulk.together`), or, where a
batch's statements need each other's results (the trigger service's), run in
:meth:`DirectConnections.transaction`.

Such a transaction runs in libpq's pipeline mode: statements are sent without waiting for one
another, and the client waits only when it reads rows (:meth:`Statements.send`, :class:`Pending`).
``BEGIN`` travels with the first statement and ``COMMIT`` is answered at the end, so a transaction
whose statements are read one by one costs one round trip per statement plus one, and one that
sends its independent statements together costs one per group. On a busy machine each round trip
is a wake-up of the backend and of this process, a millisecond or more (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import namedtuple_row

from millrace_common.platform.db import connection_pool, pooled
from millrace_common.platform.settings import ServiceSettings

# A quoted literal or identifier (kept as it is), or a ``:name`` parameter (not a ``::`` cast).
_NAMED_PARAMETER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match[1] is None:
            return match[0]
        return f"${names.setdefault(match[1], len(names) + 1)}"

    return _NAMED_PARAMETER.sub(number, sql).encode(), tuple(names)


async def execute(
    connection: psycopg.AsyncConnection[Any],
    sql: str,
    params: Mapping[str, Any],
    *,
    prepare: bool | None = None,
    row_factory: Any = None,
) -> psycopg.AsyncRawCursor[Any]:
    """Run SQL written with ``:name`` parameters as PostgreSQL's own ``$n`` ones. psycopg parses a
    ``%(name)s`` query on every execution once it is longer than 4 KB (it caches only shorter ones),
    and a batch's statement is longer; this converts each text once."""
    query, names = _numbered(sql)
    cursor = psycopg.AsyncRawCursor(connection, row_factory=row_factory)
    await cursor.execute(query, [params[name] for name in names], prepare=prepare)
    return cursor


class Rows(list[Any]):
    """A statement's rows, each a named tuple (``row.column``), and how many rows it changed."""

    rowcount: int = -1

    def scalars(self) -> list[Any]:
        """Each row's first column."""
        return [row[0] for row in self]


class Pending:
    """A statement sent, its rows not read yet. In pipeline mode reading them (:meth:`rows`) sends
    whatever was queued and waits for the answers to every statement sent so far; the first error
    among them is raised there, whichever statement it belongs to."""

    def __init__(self, cursor: psycopg.AsyncRawCursor[Any]) -> None:
        self._cursor = cursor

    async def rows(self) -> Rows:
        cursor = self._cursor
        try:
            fetched = await cursor.fetchall()
        except psycopg.ProgrammingError as error:
            # psycopg refuses to fetch from a statement that returns no rows (an insert without
            # RETURNING, say), an error of its own, without a SQLSTATE; this statement's answer was
            # read all the same. A server's error (an undefined table, say) is raised.
            result = cursor.pgresult
            if error.sqlstate is not None or result is None or result.status != pq.ExecStatus.COMMAND_OK:
                raise
            fetched = []
        rows = Rows(fetched)
        rows.rowcount = cursor.rowcount
        return rows


class Statements:
    """Statements on one psycopg connection, written with ``:name`` parameters (:func:`execute`),
    each returning its rows as :class:`Rows`: the call shape of SQLAlchemy's
    ``AsyncConnection.execute(text(sql), params)`` at a fraction of its cost, for a hot path whose
    transaction runs several statements of its own text."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    async def send(self, sql: str, params: Mapping[str, Any] | None = None) -> Pending:
        """Send a statement and return at once (in pipeline mode; otherwise once it was answered):
        statements that do not need each other's rows, sent one after the other and read after,
        share one round trip. An error in one is raised at the first read after it was sent (of any
        statement's rows), or at the transaction's end."""
        return Pending(await execute(self.connection, sql, params or {}, row_factory=namedtuple_row))

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Rows:
        """Send a statement and read its rows (none for a statement that returns none)."""
        return await (await self.send(sql, params)).rows()


def array_literal(values: Iterable[object]) -> str:
    """Numbers or UUIDs as a PostgreSQL array's text (``{1,2,3}``), for ``cast(:x as bigint[])`` and
    the like: one string to send, where a list is adapted element by element."""
    return "{" + ",".join(map(str, values)) + "}"


class DirectConnections:
    """At most ``size`` autocommit psycopg connections on the settings' schema, from a ``psycopg_pool``
    pool opened on first use (its ``size`` counts against ``MILLRACE_DB_MAX_CONNECTIONS``: the
    bootstrap passes it to :func:`~millrace_common.platform.db.create_engine` as ``reserved``). A
    connection that broke is discarded, and one left inside a transaction by an error is rolled back,
    by the pool, before it is handed out again."""

    def __init__(
        self, settings: ServiceSettings, *, size: int = 4, name: str | None = None, check: bool = False
    ) -> None:
        self.size = size
        self._pool = connection_pool(
            settings, size=size, name=name or f"direct{size}", autocommit=True, check=check
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with pooled(self._pool) as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """A transaction on one of the connections, in pipeline mode (the module's note): ``BEGIN``
        is sent with the first statement, ``COMMIT`` when the block ends, and the block's statements
        are sent without waiting until their rows are read. Rolled back when the block raises."""
        # When the block raises, the pipeline's end waits for what was sent, and the connection's
        # own exit (db.pooled) rolls the transaction back.
        async with self.connection() as connection, connection.pipeline():
            statements = Statements(connection)
            await statements.send("BEGIN")
            yield statements
            await statements.send("COMMIT")  # answered when the pipeline ends

    async def close(self) -> None:
        if not self._pool.closed:
            await self._pool.close()
