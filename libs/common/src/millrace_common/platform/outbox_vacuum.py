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
was last vacuumed (by anyone, autovacuum included): :func:`due` decides. One service at a time
vacuums (a session advisory lock; the others skip that turn). ``VACUUM (truncate false)``: giving
the heap's empty tail back to the system takes a lock that makes inserts wait, on the path; the
rows' space is reused instead, and autovacuum still truncates when it passes. A manual VACUUM is
not cost-delayed, so a pass over the small table this keeps takes milliseconds.

VACUUM needs the table's owner (the user the migrations ran as). A service that connects as
another user is refused with a warning, and the outbox is left to autovacuum.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

VACUUM_AT_DEAD_ROWS = 5_000
"""Fewer dead rows than this are not worth a pass: about a second of the path under load."""

_LOCK_SPACE = 2_028_451
"""The advisory lock space of the vacuum (the relay's lock uses another)."""

_LOCK = text(f"select pg_try_advisory_lock({_LOCK_SPACE}, hashtext(current_schema() || '.outbox'))")
_UNLOCK = text(f"select pg_advisory_unlock({_LOCK_SPACE}, hashtext(current_schema() || '.outbox'))")
_STATE = text(
    "select n_dead_tup, extract(epoch from now() - greatest(last_vacuum, last_autovacuum))"
    " from pg_stat_user_tables where relid = to_regclass('outbox')"
)
_VACUUM = text("vacuum (truncate false) outbox")


def due(dead_rows: int, seconds_since_last: float | None, every_seconds: float) -> bool:
    """Whether to vacuum now: enough rows died, and no vacuum (ours or autovacuum's) ran within
    ``every_seconds`` (None: the table was never vacuumed)."""
    if dead_rows < VACUUM_AT_DEAD_ROWS:
        return False
    return seconds_since_last is None or seconds_since_last >= every_seconds


async def vacuum_once(engine: AsyncEngine, every_seconds: float) -> bool:
    """One turn: vacuum the outbox if it is due and no other service is at it; whether it did."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if not (await connection.execute(_LOCK)).scalar_one():
            return False
        try:
            state = (await connection.execute(_STATE)).first()
            if state is None:
                return False
            dead, since = state
            if not due(int(dead or 0), None if since is None else float(since), every_seconds):
                return False
            await connection.execute(_VACUUM)
            return True
        finally:
            await connection.execute(_UNLOCK)


def vacuuming_loop(every_seconds: float, engine: AsyncEngine) -> Callable[[], Awaitable[None]] | None:
    """A background job that takes a turn every ``every_seconds``; None when it is off (0)."""
    if every_seconds <= 0:
        return None

    async def vacuum_outbox() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            if await vacuum_once(engine, every_seconds):
                log.debug("outbox vacuumed")

    return vacuum_outbox
