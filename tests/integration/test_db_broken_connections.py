"""A connection that breaks while a caller holds it (PostgreSQL restarted, its backend killed) goes back
to its pool as broken, so the pool opens another: psycopg 3.3's ``close()`` returns early for a
broken connection, before ``close_returns`` hands it back, and the pool counted it as in use forever.
Once as many had broken as the pool holds, every caller of that process waited its whole wait for a
connection and failed, long after PostgreSQL was back (the runner's nodes failed for minutes after a
restart in the fault drill)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from millrace_common.platform import db
from millrace_common.platform.db import conninfo, create_engine
from millrace_common.platform.settings import ServiceSettings
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

POOL_SIZE = 2


async def kill_backends(settings: ServiceSettings, pids: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as admin:
        for pid in pids:
            await admin.execute("select pg_terminate_backend(%s)", [pid])


def test_connections_broken_while_held_are_replaced(infra: Infra, namespace: str):
    settings = ServiceSettings(
        service_name="broken-test",
        namespace=namespace,
        database_url=infra.database_url,
        db_pool_size=POOL_SIZE,
    )

    async def scenario() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            for _ in range(3):  # more connections break than the pool holds
                async with engine.connect() as first, engine.connect() as second:
                    held = [first, second]
                    pids = [(await c.execute(text("select pg_backend_pid()"))).scalar_one() for c in held]
                    await kill_backends(settings, pids)
                    for connection in held:
                        with pytest.raises(DBAPIError):
                            await connection.execute(text("select 1"))
            # Every connection the pool ever handed out broke while held: the pool must open new ones
            # now, not wait for the broken ones to come back.
            async with asyncio.timeout(10):
                async with engine.connect() as a, engine.connect() as b:
                    one = (await a.execute(text("select 1"))).scalar_one()
                    two = (await b.execute(text("select 2"))).scalar_one()
            return one, two
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == (1, 2)


def test_only_a_connection_idle_past_the_window_is_checked(infra: Infra, namespace: str, monkeypatch):
    """The checkout check costs a round trip, so a connection handed out within the last
    ``CHECK_AFTER_IDLE_SECONDS`` goes out unchecked; one idle for longer is checked, and one whose
    backend died while it sat in the pool is replaced without its next user seeing an error."""
    monkeypatch.setattr(db, "CHECK_AFTER_IDLE_SECONDS", 2.0)
    settings = ServiceSettings(
        service_name="check-test", namespace=namespace, database_url=infra.database_url, db_pool_size=1
    )
    checks: list[float] = []
    real_check = AsyncConnectionPool.check_connection

    async def counted(connection: psycopg.AsyncConnection) -> None:
        checks.append(time.monotonic())
        await real_check(connection)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))

    async def pid(engine) -> int:
        async with engine.connect() as connection:
            return (await connection.execute(text("select pg_backend_pid()"))).scalar_one()

    async def scenario() -> tuple[list[int], int, int]:
        engine = db.create_engine(settings)
        try:
            pids = [await pid(engine) for _ in range(5)]  # one connection, handed out in quick turns
            during_burst = len(checks)
            await kill_backends(settings, [pids[-1]])
            await asyncio.sleep(2.3)  # past the window: the next hand-out checks, finds it dead
            after = await pid(engine)
            return pids, during_burst, after
        finally:
            await engine.dispose()

    pids, during_burst, after = asyncio.run(scenario())
    assert len(set(pids)) == 1
    assert during_burst == 1, "only the first hand-out of a burst is checked"
    assert after != pids[0], "the dead connection was discarded and another opened, with no error"
    assert len(checks) > during_burst, "the connection idle past the window was not checked"


def test_a_connection_handed_out_again_and_again_keeps_one_notice_handler(infra: Infra, namespace: str):
    """SQLAlchemy adds its notice handler at every checkout (``NullPool``: each is a new connection to
    it) while the pool hands out the same connection: the list grew by one per transaction."""
    settings = ServiceSettings(
        service_name="notice-test", namespace=namespace, database_url=infra.database_url, db_pool_size=1
    )

    async def scenario() -> list[int]:
        engine = create_engine(settings)
        counts = []
        try:
            for _ in range(5):
                async with engine.connect() as connection:
                    raw = (await connection.get_raw_connection()).driver_connection
                    counts.append(len(raw._notice_handlers))
        finally:
            await engine.dispose()
        return counts

    assert asyncio.run(scenario()) == [1] * 5
