"""A connection that breaks while a caller holds it (PostgreSQL restarted, its backend killed) goes back
to its pool as broken, so the pool opens another: psycopg 3.3's ``close()`` returns early for a
broken connection, before ``close_returns`` hands it back, and the pool counted it as in use forever.
Once as many had broken as the pool holds, every caller of that process waited its whole wait for a
connection and failed, long after PostgreSQL was back (the runner's nodes failed for minutes after a
restart in the fault drill)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from millrace_common.platform.db import conninfo, create_engine
from millrace_common.platform.settings import ServiceSettings
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
