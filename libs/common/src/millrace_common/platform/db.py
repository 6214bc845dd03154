"""PostgreSQL connections: every one a process opens comes from a ``psycopg_pool`` pool, built in each
service's bootstrap, never at import.

**No startup options.** A connection sends nothing but the URL's own parameters: PgBouncer in
transaction mode refuses a startup ``options`` parameter (the old ``-csearch_path=<schema>``). In
production the namespace is empty and the tables are in ``public``, which the default
``search_path`` finds, so nothing is set at all. A namespaced installation (every test, or several
installations sharing one database) sets ``search_path`` once per new connection, in the pool's
``configure`` callback. A session setting is not safe behind PgBouncer in transaction mode (the
server connection is shared by other clients); a namespaced installation behind one gives its own
role the schema instead (``ALTER ROLE <role> SET search_path = <namespace>``) and sets
``MILLRACE_DB_SEARCH_PATH_FROM_ROLE``, so the callback sets nothing (docs/operations.md).

**The budget.** ``MILLRACE_DB_MAX_CONNECTIONS`` is the most connections one process opens, all its
pools together: the bootstrap builds its direct pools (``pg.DirectConnections``)
first and passes their sizes as ``reserved``; the SQLAlchemy engine gets the rest (at most
``MILLRACE_DB_POOL_SIZE``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_

from millrace_common.platform.settings import ServiceSettings

Configure = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


def conninfo(settings: ServiceSettings) -> str:
    """The settings' database URL as libpq connection info (without the SQLAlchemy driver name)."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def schema_setter(settings: ServiceSettings) -> Configure | None:
    """What a new connection runs to find the installation's tables: nothing in production (the
    tables are in ``public``) or when the role carries the schema; ``SET search_path`` otherwise."""
    if not settings.namespace or settings.db_search_path_from_role:
        return None
    statement = sql.SQL("set search_path to {}").format(sql.Identifier(settings.database_schema))

    async def configure(connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.execute(statement)
        if not connection.autocommit:
            await connection.commit()

    return configure


class PoolConnection(psycopg.AsyncConnection[Any]):
    """A pooled connection whose ``close`` gives it back to its pool even when it is broken, and
    which remembers when it was last handed out (:func:`check_if_idle`).

    psycopg 3.3's ``close`` returns at once for a broken connection, before ``close_returns`` hands
    it back: the pool went on counting it as in use and never replaced it. A connection broken
    while held (PostgreSQL restarted, its backend killed) is how SQLAlchemy's checkouts end after a
    restart, so a process lost a connection for each one it held then, and once the pool's whole
    size was lost every caller waited its full wait and failed, with PostgreSQL long back. Given
    back, the pool discards it and opens another."""

    handed_out_at = float("-inf")
    """``time.monotonic()`` when the pool last handed it out (:func:`check_if_idle`)."""

    def add_notice_handler(self, callback: Callable[[psycopg.errors.Diagnostic], None]) -> None:
        """Kept once: SQLAlchemy adds its notice handler at every checkout (with ``NullPool`` each one
        is a new connection to it), and the pool hands the same connection out again and again, so
        its list of handlers grew by one per transaction until the connection was replaced (a notice
        was then logged once per transaction it had served)."""
        if callback not in self._notice_handlers:
            super().add_notice_handler(callback)

    async def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None and self.closed:
            await pool.putconn(self)
            self._pool = None  # given back once: a second close must not make the pool open two
            return
        await super().close()


CHECK_AFTER_IDLE_SECONDS = 1.0
"""A connection handed out less than this long ago is handed out again without a check."""


async def check_if_idle(connection: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check before it hands a connection out: a round trip to PostgreSQL (psycopg_pool's
    own check), skipped for a connection last handed out within ``CHECK_AFTER_IDLE_SECONDS``, as
    HikariCP skips it for one used within half a second. On a busy path the check was one round
    trip more per transaction. A connection back in the pool worked when its last user was done
    with it (one that broke is discarded, not kept), so one in steady use is known alive, and one
    that sat in the pool (through a PostgreSQL restart, say) is still checked. One that broke within
    that second fails its user's statement: a consumer's batch is polled again, an API request is
    answered 503, and the pool discards the connection."""
    now = time.monotonic()
    if isinstance(connection, PoolConnection):
        recent = now - connection.handed_out_at < CHECK_AFTER_IDLE_SECONDS
        connection.handed_out_at = now
        if recent:
            return
    await AsyncConnectionPool.check_connection(connection)


def connection_pool(
    settings: ServiceSettings, *, size: int, name: str, autocommit: bool = False, check: bool = False
) -> AsyncConnectionPool:
    """A pool of at most ``size`` connections, opened on first use (an async pool must be opened
    inside the event loop, and the bootstrap runs before it). ``close_returns``: a connection's
    ``close`` gives it back, which is how SQLAlchemy hands its connections back (below), broken
    ones too (:class:`PoolConnection`). ``check``: each connection is checked when handed out,
    unless it was handed out within the last second (:func:`check_if_idle`)."""
    return AsyncConnectionPool(
        conninfo(settings),
        connection_class=PoolConnection,
        kwargs={"autocommit": autocommit},
        min_size=0,
        max_size=max(1, size),
        open=False,
        configure=schema_setter(settings),
        check=check_if_idle if check else None,
        close_returns=True,
        name=f"millrace-{settings.service_name}-{name}",
    )


async def opened(pool: AsyncConnectionPool) -> AsyncConnectionPool:
    """The pool, opened if it was not yet (opening an open pool does nothing)."""
    if pool.closed:
        await pool.open()
    return pool


CONNECTION_WAIT_SECONDS = 30.0
"""How long a caller waits for a connection while every one of its pool is busy."""


async def take(
    pool: AsyncConnectionPool, *, wait_seconds: float = CONNECTION_WAIT_SECONDS, poll_seconds: float = 0.2
) -> psycopg.AsyncConnection[Any]:
    """A connection from ``pool``. While none is free the caller waits up to ``wait_seconds`` for
    one, but only while the pool can open connections: psycopg_pool retries a failed connection in
    the background and would hold the caller for the whole wait while PostgreSQL is down (a request
    answered 503 after 30 s rather than at once), so the wait ends, with :class:`PoolTimeout` (an
    ``OperationalError``: "PostgreSQL unreachable"), as soon as an attempt to connect failed."""
    pool = await opened(pool)
    failures = pool.get_stats().get("connections_errors", 0)
    deadline = time.monotonic() + wait_seconds
    while True:
        left = deadline - time.monotonic()
        try:
            return await pool.getconn(timeout=max(0.001, min(poll_seconds, left)))
        except PoolTimeout:
            if pool.get_stats().get("connections_errors", 0) > failures:
                reason = f"PostgreSQL cannot be reached: pool {pool.name} failed to connect"
                raise PoolTimeout(reason) from None
            if left <= poll_seconds:
                raise


@asynccontextmanager
async def pooled(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of ``pool`` (:func:`take`) for the block, given back after it (committed, or
    rolled back after an error, as the pool's own ``connection()`` does)."""
    connection = await take(pool)
    try:
        async with connection:
            yield connection
    finally:
        await pool.putconn(connection)


def engine_pool_size(settings: ServiceSettings, reserved: int) -> int:
    """The engine's share of the process's budget: what the direct pools left, at most
    ``db_pool_size``, and at least one."""
    return max(1, min(settings.db_pool_size, settings.db_max_connections - reserved))


def create_engine(settings: ServiceSettings, *, reserved: int = 0) -> AsyncEngine:
    """An async engine on a ``psycopg_pool`` pool (SQLAlchemy's own pool is off: ``NullPool``, whose
    every checkout takes a connection from the psycopg pool and whose release gives it back). Its
    size is the engine's share of the budget, ``reserved`` being what the process's direct pools
    hold. Each connection is checked when taken, as ``pool_pre_ping`` did, unless it was handed out
    within the last second (:func:`check_if_idle`). Disposing of the engine
    closes the pool."""
    pool = connection_pool(settings, size=engine_pool_size(settings, reserved), name="engine", check=True)

    async def checkout() -> psycopg.AsyncConnection[Any]:
        return await take(pool)

    engine = create_async_engine(settings.database_url, poolclass=NullPool, async_creator=checkout)

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _close_pool(disposed: Engine) -> None:
        if not pool.closed:
            await_(pool.close())

    return engine


async def database_reachable(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))
    return True
