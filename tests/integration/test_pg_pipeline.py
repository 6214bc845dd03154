"""``pg.DirectConnections.transaction`` against the real PostgreSQL: the transaction runs in libpq's
pipeline mode, so statements sent together share one round trip (counted from libpq's own trace of
the messages it sends), and it is still one transaction: committed when the block ends, rolled back
when a statement fails or the block raises."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from millrace_common.platform.pg import DirectConnections, Statements
from millrace_common.platform.settings import ServiceSettings

from tests.support.infra import Infra
from tests.support.pg_trace import Trace

pytestmark = pytest.mark.integration


def _settings(infra: Infra, namespace: str) -> ServiceSettings:
    return ServiceSettings(service_name="pipeline", namespace=namespace, database_url=infra.database_url)


async def _table(database: DirectConnections, name: str) -> None:
    async with database.connection() as connection:
        await connection.execute(f"create table {name} (id integer primary key, note text)")


async def _count(database: DirectConnections, name: str) -> list[tuple[int, str]]:
    async with database.connection() as connection:
        cursor = await connection.execute(f"select id, note from {name} order by id")
        return [tuple(row) for row in await cursor.fetchall()]


def test_statements_sent_together_share_one_round_trip(infra: Infra, namespace: str):
    async def scenario() -> tuple[list[object], Trace]:
        database = DirectConnections(_settings(infra, namespace), size=1)
        await _table(database, "pipelined")
        try:
            async with database.transaction() as statements:
                trace = Trace.start(statements.connection)
                inserted = await statements.send(
                    "insert into pipelined values (:id, :note) returning id", {"id": 1, "note": "a"}
                )
                quiet = await statements.send("insert into pipelined values (2, 'b')")
                counted = await statements.send("select count(*) as n from pipelined")
                answers: list[object] = [
                    (await inserted.rows()).scalars(),
                    list(await quiet.rows()),
                    (await counted.rows()).scalars(),
                ]
                # read one by one: a round trip each
                answers.append((await statements.execute("select 3 as three")).scalars())
            trace.stop()
            answers.append(await _count(database, "pipelined"))
        finally:
            await database.close()
        return answers, trace

    answers, trace = asyncio.run(scenario())
    assert answers == [[1], [], [2], [3], [(1, "a"), (2, "b")]]
    # A round trip is the client sending, then reading answers. Three statements sent, then their
    # answers; one statement and its answer; COMMIT with the sync that ends the pipeline, and its
    # answer (BEGIN went before the trace, with the first statement).
    assert trace.round_trips() == [["Execute"] * 3, ["Execute"], ["Execute", "Sync"]], trace.messages


def test_a_failed_statement_or_a_raising_block_rolls_the_transaction_back(infra: Infra, namespace: str):
    async def scenario() -> dict[str, object]:
        database = DirectConnections(_settings(infra, namespace), size=1)
        await _table(database, "rolled")
        seen: dict[str, object] = {}
        try:
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with database.transaction() as statements:
                    await statements.send("insert into rolled values (1, 'kept?')")
                    await statements.send("insert into rolled values (1, 'again')")  # fails
                    await statements.execute("select 1")  # the error surfaces where rows are read
            seen["after_failure"] = await _count(database, "rolled")

            class Refused(Exception):
                pass

            with pytest.raises(Refused):
                async with database.transaction() as statements:
                    await statements.execute("insert into rolled values (2, 'b')")
                    raise Refused
            seen["after_raise"] = await _count(database, "rolled")

            with pytest.raises(psycopg.errors.UndefinedTable):  # not hidden by an answer read before it
                async with database.transaction() as statements:
                    quiet = await statements.send("insert into rolled values (5, 'e')")
                    await statements.send("select * from no_such_table")
                    await quiet.rows()
            seen["after_undefined"] = await _count(database, "rolled")

            with pytest.raises(psycopg.errors.UniqueViolation):  # unread: raised when the block ends
                async with database.transaction() as statements:
                    await statements.send("insert into rolled values (3, 'c'), (3, 'c')")
            seen["after_unread"] = await _count(database, "rolled")

            async with database.transaction() as statements:  # the connection is usable again
                await statements.send("insert into rolled values (4, 'd')")
            seen["committed"] = await _count(database, "rolled")
            async with database.connection() as connection:
                seen["status"] = connection.info.transaction_status
        finally:
            await database.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["after_failure"] == []
    assert seen["after_raise"] == []
    assert seen["after_unread"] == []
    assert seen["after_undefined"] == []
    assert seen["committed"] == [(4, "d")]
    assert seen["status"] == psycopg.pq.TransactionStatus.IDLE


def test_statements_outside_a_pipeline_answer_at_once(infra: Infra, namespace: str):
    async def scenario() -> list[object]:
        database = DirectConnections(_settings(infra, namespace), size=1)
        try:
            async with database.connection() as connection:
                statements = Statements(connection)
                made = await statements.execute("create table plain (id integer)")
                pending = await statements.send("insert into plain values (1), (2)")
                rows = await pending.rows()
                return [list(made), list(rows), rows.rowcount]
        finally:
            await database.close()

    assert asyncio.run(scenario()) == [[], [], 2]
