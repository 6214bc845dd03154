"""The outbox is a queue, and every service keeps it vacuumed.

Each message a service sends is an outbox row inserted in its transaction and deleted once Kafka
acknowledged it: nine rows a run on the webhook path, about 5,000 dead rows a second under load.
Autovacuum visits a database once a minute (``autovacuum_naptime``) and then works at its
cost-limited pace, so between visits the dead rows piled up (130,000 and more), the heap grew to
113 MB for 700 live rows, and PostgreSQL's CPU per run rose from 0.9-1.0 to 1.1-1.7 ms: at half the
path's capacity that was enough to turn a steady load into a queue (completion p99 0.1-2 s,
docs/benchmarks.md). With the outbox vacuumed every few seconds the table stays small and the
figures stay where they start.

Every ``MILLRACE_OUTBOX_VACUUM_SECONDS`` each service looks at the table's dead rows and when it
was last vacuumed (by anyone, autovacuum included): :func:`due` decides. ``VACUUM (skip_locked,
truncate false)``: a turn that finds the table held by another vacuum (another service's,
autovacuum's) or by a migration skips instead of waiting, and the heap's empty tail is not given
back to the system, which takes a lock that makes inserts wait, on the path; the rows' space is
reused instead, and autovacuum still truncates when it passes. A manual VACUUM is not cost-delayed,
so a pass over the small table this keeps takes milliseconds.

A turn uses a connection of its own, opened for it and closed after (a few milliseconds every few
seconds), in autocommit as VACUUM needs: nothing of it can be left on a pooled connection, and each
statement stands alone, as behind a transaction-mode PgBouncer.

VACUUM needs the table's owner (the user the migrations ran as). A service that connects as
another user says so once and leaves the outbox to autovacuum.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from millrace_common.platform.db import conninfo, schema_setter
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

VACUUM_AT_DEAD_ROWS = 5_000
"""Fewer dead rows than this are not worth a pass: about a second of the path under load."""

Connect = Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]

_OWNED = "select pg_has_role(c.relowner, 'USAGE') from pg_class c where c.oid = to_regclass('outbox')"
_STATE = (
    "select n_dead_tup, extract(epoch from now() - greatest(last_vacuum, last_autovacuum)), vacuum_count"
    " from pg_stat_user_tables where relid = to_regclass('outbox')"
)
_VACUUM = "vacuum (skip_locked, truncate false) outbox"


def due(dead_rows: int, seconds_since_last: float | None, every_seconds: float) -> bool:
    """Whether to vacuum now: enough rows died, and no vacuum (ours or autovacuum's) ran within
    ``every_seconds`` (None: the table was never vacuumed)."""
    if dead_rows < VACUUM_AT_DEAD_ROWS:
        return False
    return seconds_since_last is None or seconds_since_last >= every_seconds


def connector(settings: ServiceSettings) -> Connect:
    """Opens an autocommit connection on the settings' schema, for one turn."""
    configure = schema_setter(settings)

    async def connect() -> psycopg.AsyncConnection[Any]:
        connection = await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True)
        if configure is not None:
            await configure(connection)
        return connection

    return connect


async def may_vacuum(connect: Connect) -> bool:
    """Whether this service's database user may vacuum the outbox (owns it, or is a member of its owner)."""
    async with await connect() as connection:
        row = await (await connection.execute(_OWNED)).fetchone()
    return bool(row and row[0])


async def vacuum_once(connect: Connect, every_seconds: float) -> bool:
    """One turn: vacuum the outbox if it is due; whether a vacuum was done (not when it was skipped
    because another held the table)."""
    async with await connect() as connection:
        state = await (await connection.execute(_STATE)).fetchone()
        if state is None:
            return False
        dead, since, vacuums = state
        if not due(int(dead or 0), None if since is None else float(since), every_seconds):
            return False
        await connection.execute(_VACUUM)
        after = await (await connection.execute(_STATE)).fetchone()
    return after is not None and after[2] > vacuums


def vacuuming_loop(settings: ServiceSettings) -> Callable[[], Awaitable[None]] | None:
    """A background job that takes a turn every ``outbox_vacuum_seconds``; None when it is off (0)."""
    every_seconds = settings.outbox_vacuum_seconds
    if every_seconds <= 0:
        return None
    connect = connector(settings)

    async def vacuum_outbox() -> None:
        checked = False
        while True:
            await asyncio.sleep(every_seconds)
            try:
                if not checked:
                    if not await may_vacuum(connect):
                        log.warning(
                            "the outbox is not vacuumed by this service: its database user does not own"
                            " the table (autovacuum alone keeps it; docs/operations.md)"
                        )
                        await asyncio.Event().wait()  # for the rest of the process's life
                    checked = True
                if await vacuum_once(connect, every_seconds):
                    log.debug("outbox vacuumed")
            except psycopg.Error as error:  # the database away or busy: the next turn tries again
                log.warning("outbox vacuum turn failed", extra={"ids": {"error": type(error).__name__}})

    return vacuum_outbox
