"""Plain psycopg connections for hot paths.

SQLAlchemy's async engine costs about a millisecond of CPU per statement (its greenlet bridge,
compilation cache lookups and result wrapping), more than PostgreSQL spends running the orchestrator's
statements. A hot path that needs only a few statements of its own text per message batch takes
a connection from here instead: psycopg in autocommit mode, so each statement is its own transaction
and costs one round trip, with no ``BEGIN`` or ``COMMIT`` of its own. Whatever must be atomic is
therefore written as one statement (see :func:`millrace_common.platform.bulk.together`).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url

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
) -> psycopg.AsyncRawCursor[Any]:
    """Run SQL written with ``:name`` parameters as PostgreSQL's own ``$n`` ones. psycopg parses a
    ``%(name)s`` query on every execution once it is longer than 4 KB (it caches only shorter ones),
    and a batch's statement is longer; this converts each text once."""
    query, names = _numbered(sql)
    cursor = psycopg.AsyncRawCursor(connection)
    await cursor.execute(query, [params[name] for name in names], prepare=prepare)
    return cursor


def array_literal(values: Iterable[object]) -> str:
    """Numbers or UUIDs as a PostgreSQL array's text (``{1,2,3}``), for ``cast(:x as bigint[])`` and
    the like: one string to send, where a list is adapted element by element."""
    return "{" + ",".join(map(str, values)) + "}"


def conninfo(settings: ServiceSettings) -> str:
    """The settings' database URL as libpq connection info (without the SQLAlchemy driver name)."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class DirectConnections:
    """At most ``size`` autocommit psycopg connections on the settings' schema, opened on first use
    and kept. A connection that broke, or that was left inside a transaction by an error, is closed
    rather than handed out again."""

    def __init__(self, settings: ServiceSettings, *, size: int = 4) -> None:
        self._conninfo = conninfo(settings)
        self._options = f"-csearch_path={settings.database_schema}"
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, options=self._options)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._open()
            try:
                yield connection
            finally:
                reusable = not connection.closed and not connection.broken
                if reusable and connection.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(connection)
                else:
                    await connection.close()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()
