"""A service's turn at vacuuming the outbox, against PostgreSQL, on the connections the services
open for it: a table with enough dead rows is vacuumed, one vacuumed a moment ago is not, and a turn
that finds the table held by another vacuum (or a migration) skips at once instead of waiting."""

from __future__ import annotations

import asyncio

import pytest
from millrace_common.platform.outbox_vacuum import VACUUM_AT_DEAD_ROWS, connector, may_vacuum, vacuum_once
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def _let_rows_die(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "insert into outbox (producer, topic, key, value, created_at)"
                " select 'p', 't', 'k', 'v', now() from generate_series(1, :rows)"
            ),
            {"rows": rows},
        )
    async with engine.begin() as connection:
        await connection.execute(text("delete from outbox"))
        await connection.execute(text("select pg_stat_force_next_flush()"))


async def test_the_outbox_is_vacuumed_when_rows_died_once_a_turn_and_skipped_when_held(
    infra: Infra, namespace: str
) -> None:
    connect = connector(infra.settings(namespace))
    engine = create_async_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        async with engine.begin() as connection:
            await connection.execute(text("alter table outbox set (autovacuum_enabled = false)"))
        assert await may_vacuum(connect), "the services' user owns the table here"
        assert not await vacuum_once(connect, 5), "nothing died yet"
        await _let_rows_die(engine, VACUUM_AT_DEAD_ROWS - 100)
        assert not await vacuum_once(connect, 5), "too few died"
        await _let_rows_die(engine, 600)

        async with engine.connect() as holder:  # another vacuum, or a migration, holds the table
            await holder.execute(text("lock table outbox in share update exclusive mode"))
            assert not await asyncio.wait_for(vacuum_once(connect, 5), 5), "skipped, not waited for"
            await holder.rollback()

        assert await vacuum_once(connect, 5)
        async with engine.connect() as connection:
            last = (
                await connection.execute(
                    text("select last_vacuum from pg_stat_user_tables where relid = to_regclass('outbox')")
                )
            ).scalar_one()
        assert last is not None
        await _let_rows_die(engine, VACUUM_AT_DEAD_ROWS + 500)
        assert not await vacuum_once(connect, 5), "vacuumed a moment ago"
        assert await vacuum_once(connect, 0.001), "but not within this (shorter) interval"
    finally:
        await engine.dispose()
