"""A service's turn at vacuuming the outbox, against PostgreSQL: it vacuums a table with enough dead
rows, leaves one that was just vacuumed, and steps aside while another service holds the turn."""

from __future__ import annotations

import pytest
from millrace_common.platform.outbox_vacuum import VACUUM_AT_DEAD_ROWS, vacuum_once
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

LOCK = "select pg_advisory_lock(2028451, hashtext(current_schema() || '.outbox'))"


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


async def test_the_outbox_is_vacuumed_when_rows_died_once_a_turn_and_one_service_at_a_time(
    infra: Infra, namespace: str
) -> None:
    engine = create_async_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        async with engine.begin() as connection:
            await connection.execute(text("alter table outbox set (autovacuum_enabled = false)"))
        assert not await vacuum_once(engine, 5), "nothing died yet"
        await _let_rows_die(engine, VACUUM_AT_DEAD_ROWS - 100)
        assert not await vacuum_once(engine, 5), "too few died"
        await _let_rows_die(engine, 600)

        async with engine.connect() as holder:  # another service's turn
            await holder.execute(text(LOCK))
            assert not await vacuum_once(engine, 5), "the turn is another service's"
            await holder.execute(text(LOCK.replace("pg_advisory_lock", "pg_advisory_unlock")))
            await holder.commit()

        assert await vacuum_once(engine, 5)
        async with engine.connect() as connection:
            last = (
                await connection.execute(
                    text("select last_vacuum from pg_stat_user_tables where relid = to_regclass('outbox')")
                )
            ).scalar_one()
        assert last is not None
        await _let_rows_die(engine, VACUUM_AT_DEAD_ROWS + 500)
        assert not await vacuum_once(engine, 5), "vacuumed a moment ago"
        assert await vacuum_once(engine, 0.001), "but not within this (shorter) interval"
    finally:
        await engine.dispose()
