"""The trigger's firing ledger against the real PostgreSQL: one statement records the firings and
writes the StartRuns of those whose key was new, sent before anything is read, so a firing whose key
was recorded before (the same event again, under another offset) must get no outbox row. Only the new
firing's StartRun is written, and only its row is handed to the relay, read inside the transaction or
after its commit."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from millrace_trigger.adapters.store import TriggerStore
from millrace_trigger.domain.firings import Firing, Outcome
from millrace_trigger.metrics import TriggerMetrics
from millrace_trigger.service_layer.firings import FiringLedger
from prometheus_client import CollectorRegistry

from tests.support.infra import Infra
from tests.support.pg_trace import Trace

pytestmark = pytest.mark.integration

PRODUCER = "trigger@settle-test"


def _firing(key: str, outcome: Outcome = Outcome.STARTED) -> Firing:
    return Firing(
        idempotency_key=key,
        tenant_id="t-settle",
        workflow_id=uuid4(),
        workflow_version=1,
        kind="record_created",
        source="record",
        source_event_id=uuid4(),
        data={"key": key},
        outcome=outcome,
        reason=None if outcome is Outcome.STARTED else "no run: the test says so",
    )


def test_a_known_key_keeps_no_outbox_row_and_the_new_ones_keep_theirs(infra: Infra, namespace: str):
    settings = ServiceSettings(service_name="settle", namespace=namespace, database_url=infra.database_url)
    ledger = FiringLedger(
        TriggerStore("settle-test"), Namespace(namespace), PRODUCER, TriggerMetrics(CollectorRegistry())
    )
    known, again = _firing("known"), _firing("known-too")
    new, later, refused = _firing("new"), _firing("later"), _firing("refused", Outcome.CONDITION_ERROR)
    # commands for waiting runs, written after the StartRuns
    also = [Outgoing(RUNS_COMMANDS, f"waiting-{n}", known.start_run()) for n in (1, 2)]
    now = datetime.now(UTC)

    async def scenario() -> tuple[object, object, list[tuple[int, str]]]:
        database = DirectConnections(settings, size=1)
        try:
            async with database.transaction() as connection:
                first = await ledger.settle(connection, [known, again], now)
            async with database.transaction() as connection:  # known keys between new ones
                sent = await ledger.send(connection, [refused, new, known, later, again], now, also=also)
            second = await sent.settled()  # read after the commit
            async with database.connection() as connection:
                cursor = await connection.execute(
                    "select id, convert_from(key, 'UTF8') from outbox where producer = %s order by id",
                    (PRODUCER,),
                )
                rows = [tuple(row) for row in await cursor.fetchall()]
        finally:
            await database.close()
        return first, second, rows

    first, second, rows = asyncio.run(scenario())
    assert [f.idempotency_key for f in first.recorded] == ["known", "known-too"]
    assert sorted(f.idempotency_key for f in second.recorded) == ["later", "new", "refused"]
    assert second.duplicates == 2
    # The outbox holds the first two StartRuns, the new ones and the waiting runs' commands, not a
    # second StartRun for a known key; the ids handed over are those rows', in order, each with its
    # message.
    assert [key for _, key in rows] == [
        str(known.run_id),
        str(again.run_id),
        str(new.run_id),
        str(later.run_id),
        "waiting-1",
        "waiting-2",
    ]
    assert second.outbox_ids == [row_id for row_id, _ in rows[2:]]
    assert [key.decode() for _, key, _ in second.messages] == [key for _, key in rows[2:]]
    assert [json.loads(value)["run_id"] for _, _, value in second.messages] == [
        str(new.run_id),
        str(later.run_id),
        str(known.run_id),
        str(known.run_id),
    ]


def test_the_firings_and_the_commit_share_one_round_trip(infra: Infra, namespace: str):
    """What a record batch's second round trip holds: the firings with their StartRuns, the waiting
    runs' commands and the COMMIT, sent without waiting; their answers are read after the commit."""
    settings = ServiceSettings(service_name="settle", namespace=namespace, database_url=infra.database_url)
    ledger = FiringLedger(
        TriggerStore("settle-test"), Namespace(namespace), PRODUCER, TriggerMetrics(CollectorRegistry())
    )
    first, second = _firing("one"), _firing("two")
    also = [Outgoing(RUNS_COMMANDS, "waiting-3", first.start_run())]

    async def scenario() -> tuple[Trace, object]:
        database = DirectConnections(settings, size=1)
        try:
            async with database.transaction() as connection:
                await connection.execute("select 1")  # BEGIN and a statement answered, as in a batch
                trace = Trace.start(connection.connection)
                sent = await ledger.send(connection, [first, second], datetime.now(UTC), also=also)
            settled = await sent.settled()
            trace.stop()
        finally:
            await database.close()
        return trace, settled

    trace, settled = asyncio.run(scenario())
    assert trace.round_trips() == [["Execute", "Execute", "Execute", "Sync"]], trace.messages
    assert sorted(f.idempotency_key for f in settled.recorded) == ["one", "two"]
    assert [key.decode() for _, key, _ in settled.messages] == [
        str(first.run_id),
        str(second.run_id),
        "waiting-3",
    ]
    assert len(settled.outbox_ids) == 3


def test_firings_that_start_no_run_and_commands_alone_write_what_they_should(infra: Infra, namespace: str):
    """The statement's other shapes: firings none of which starts a run (no StartRun row, the firings
    recorded), and a batch of waiting runs' commands only (no firings statement at all)."""
    settings = ServiceSettings(service_name="settle", namespace=namespace, database_url=infra.database_url)
    ledger = FiringLedger(
        TriggerStore("settle-test"), Namespace(namespace), PRODUCER, TriggerMetrics(CollectorRegistry())
    )
    skipped = [_firing("skipped-1", Outcome.TOO_DEEP), _firing("skipped-2", Outcome.TOO_DEEP)]
    waiting = [Outgoing(RUNS_COMMANDS, "waiting-only", skipped[0].start_run())]

    async def scenario() -> tuple[object, object, object, list[str]]:
        database = DirectConnections(settings, size=1)
        try:
            async with database.transaction() as connection:
                none_started = await ledger.send(connection, skipped, datetime.now(UTC))
            async with database.transaction() as connection:
                only_commands = await ledger.send(connection, [], datetime.now(UTC), also=waiting)
            first, again = await none_started.settled(), await none_started.settled()
            commands = await only_commands.settled()
            async with database.connection() as connection:
                cursor = await connection.execute(
                    "select convert_from(key, 'UTF8') from outbox where producer = %s order by id",
                    (PRODUCER,),
                )
                keys = [row[0] for row in await cursor.fetchall()]
        finally:
            await database.close()
        return first, again, commands, keys

    first, again, commands, keys = asyncio.run(scenario())
    assert sorted(f.idempotency_key for f in first.recorded) == ["skipped-1", "skipped-2"]
    assert first.outbox_ids == [] and first.messages == [] and first.duplicates == 0
    assert again is first  # read once
    assert commands.recorded == [] and len(commands.outbox_ids) == 1
    assert [key.decode() for _, key, _ in commands.messages] == ["waiting-only"]
    assert keys == ["waiting-only"]
