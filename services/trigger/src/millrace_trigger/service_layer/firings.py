"""The trigger service's I/O shell, shared by its use cases: for a polled batch (or a scheduler
tick), one transaction that skips what was handled before, decides, records the firings with their
StartRun commands in the outbox; then the live relay is handed those rows and publishes them at once.
Offsets are committed by the consumer after this returns.

The transaction runs on a plain psycopg connection (``pg.DirectConnections.transaction``), not the
SQLAlchemy engine: a record batch's statements cost the engine about 5 ms of CPU, most of the
service's time per batch at a few hundred events a second. It runs in pipeline mode, and the use
cases send what does not need another statement's answer together (``send_*``, then read), so a
record batch usually costs two round trips: the positions, index versions and waiting runs; then the
firings with their outbox rows and the ``COMMIT`` (docs/triggers.md, docs/benchmarks.md)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.consuming import Delivery
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.logs import bound
from millrace_common.platform.outbox import Record, outbox_rows, outbox_write, records
from millrace_common.platform.pg import DirectConnections, Pending, Statements

from millrace_trigger.adapters.clock import Clock
from millrace_trigger.adapters.store import TriggerStore
from millrace_trigger.domain.firings import Firing, Outcome
from millrace_trigger.domain.matching import dedupe
from millrace_trigger.metrics import TriggerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    recorded: list[Firing]
    duplicates: int
    outbox_ids: list[int] = field(default_factory=list)
    """The StartRuns' outbox rows (written in the caller's transaction), in the order of ``messages``."""
    messages: list[Record] = field(default_factory=list)


@dataclass
class SentFirings:
    """A batch's firings and outbox rows, sent in the caller's transaction and not read yet: read
    them (:meth:`settled`) inside the transaction, or after it committed, which then costs no round
    trip of its own (the answers come with the ``COMMIT``'s)."""

    firings: list[Firing]
    delivered: int
    starts: list[tuple[str, Outgoing]]
    """Each starting firing's key and StartRun, in the order their rows were sent."""
    namespace: Namespace
    also: list[Outgoing]
    firings_sent: Pending | None
    also_sent: Pending | None
    _settled: Settled | None = None

    async def settled(self) -> Settled:
        """The firings recorded and the outbox rows written (read once; later calls get the same)."""
        if self._settled is None:
            inserted, start_ids = await TriggerStore.recorded(self.firings_sent)
            ids = start_ids + ([] if self.also_sent is None else (await self.also_sent.rows()).scalars())
            messages = [start for key, start in self.starts if key in inserted] + self.also
            recorded = [f for f in self.firings if f.idempotency_key in inserted]
            self._settled = Settled(
                recorded, self.delivered - len(recorded), ids, records(self.namespace, messages)
            )
        return self._settled


def _start_run(firing: Firing) -> Outgoing:
    message = firing.start_run()
    return Outgoing(RUNS_COMMANDS, str(firing.run_id), message, value=message.to_bytes())


class FiringLedger:
    """Records decided firings exactly once (by idempotency key) and puts a StartRun in the outbox
    for each firing that starts a run (whose limits the orchestrator judges)."""

    def __init__(
        self, store: TriggerStore, namespace: Namespace, producer: str, metrics: TriggerMetrics
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._producer = producer
        self._metrics = metrics

    async def send(
        self,
        connection: Statements,
        firings: Sequence[Firing],
        now: datetime,
        *,
        also: Sequence[Outgoing] = (),
    ) -> SentFirings:
        """Send the fresh firings' records, and the outbox rows of their StartRuns and of the commands
        ``also`` (record events for runs waiting for them), in the caller's transaction.

        One statement records the firings and writes the StartRuns of those whose key was new
        (``TriggerStore.send_firings``): a firing recorded before (the same event again, under another
        offset) writes none, so nothing needs the answer before the ``COMMIT``."""
        unique = dedupe(firings)
        # Each StartRun serialised once, for its outbox row and for the relay alike.
        starts = [(f.idempotency_key, _start_run(f)) for f in unique if f.outcome is Outcome.STARTED]
        rows = outbox_rows(self._namespace, self._producer, [start for _, start in starts])
        firings_sent = await self._store.send_firings(
            connection, unique, now, [key for key, _ in starts], rows
        )
        also_sent = None
        if also:
            write = outbox_write(self._namespace, self._producer, also, returning_ids=True)
            also_sent = await connection.send(write.sql, write.params)
        return SentFirings(unique, len(firings), starts, self._namespace, list(also), firings_sent, also_sent)

    async def settle(
        self,
        connection: Statements,
        firings: Sequence[Firing],
        now: datetime,
        *,
        also: Sequence[Outgoing] = (),
    ) -> Settled:
        """:meth:`send`, read at once (for a use case that needs the answer inside its transaction)."""
        return await (await self.send(connection, firings, now, also=also)).settled()

    def count(self, settled: Settled, source: str) -> None:
        """Metrics for a committed transaction."""
        for item in settled.recorded:
            self._metrics.firings.labels(source=item.source, kind=item.kind, outcome=item.outcome.value).inc()
            ids = {"workflow_id": str(item.workflow_id), "source": item.source, "outcome": item.outcome.value}
            if item.outcome is Outcome.STARTED:
                with bound(run_id=item.run_id, tenant_id=item.tenant_id):
                    log.info("trigger asked for a run", extra={"ids": ids})
            else:
                with bound(tenant_id=item.tenant_id):
                    log.info("trigger fired no run", extra={"ids": {**ids, "reason": item.reason}})
        if settled.duplicates:
            self._metrics.duplicates.labels(source=source).inc(settled.duplicates)


class Moves:
    """A batch's consumer positions, moved (the statements sent, not read yet)."""

    def __init__(
        self,
        store: TriggerStore,
        connection: Statements,
        deliveries: Sequence[Delivery[Any]],
        ends: dict[str, dict[int, int]],
        sent: dict[str, Pending | None],
    ) -> None:
        self._store = store
        self._connection = connection
        self._deliveries = deliveries
        self._ends = ends
        self._sent = sent

    async def fresh(self) -> list[Delivery[Any]]:
        """The deliveries at or past their partition's position before this batch."""
        fresh = []
        for topic, ends in self._ends.items():
            positions = await self._store.positions_before(self._connection, topic, ends, self._sent[topic])
            fresh.extend(
                d
                for d in self._deliveries
                if d.record.topic == topic and d.offset >= positions[d.record.partition]
            )
        return fresh


class ConsumerShell:
    """What the use cases share: the transaction, consumer positions, publishing after."""

    def __init__(
        self,
        database: DirectConnections,
        store: TriggerStore,
        ledger: FiringLedger,
        relay: LiveRelay,
        clock: Clock,
    ) -> None:
        self.database = database
        self.store = store
        self.ledger = ledger
        self.relay = relay
        self.clock = clock

    def transaction(self) -> AbstractAsyncContextManager[Statements]:
        """The use case's transaction."""
        return self.database.transaction()

    async def unhandled(
        self, connection: Statements, deliveries: Sequence[Delivery[Any]]
    ) -> list[Delivery[Any]]:
        """The batch's messages this consumer has not handled yet (by offset), positions moved past
        the whole batch when the transaction commits."""
        return await (await self.send_moves(connection, deliveries)).fresh()

    async def send_moves(self, connection: Statements, deliveries: Sequence[Delivery[Any]]) -> Moves:
        """:meth:`unhandled`, its statements sent; :meth:`Moves.fresh` reads them."""
        by_topic: dict[str, dict[int, int]] = {}
        for delivery in deliveries:
            ends = by_topic.setdefault(delivery.record.topic, {})
            ends[delivery.record.partition] = max(
                ends.get(delivery.record.partition, -1), delivery.offset + 1
            )
        sent = {
            topic: await self.store.send_move(connection, topic, ends) for topic, ends in by_topic.items()
        }
        return Moves(self.store, connection, deliveries, by_topic, sent)

    async def publish(self, settled: Settled, source: str) -> None:
        """Once the transaction committed: the StartRuns go to Kafka at once (the relay is handed the
        rows, and deletes them when Kafka acknowledged them), and the firings are counted."""
        self.ledger.count(settled, source)
        self.relay.hand_over_later(settled.outbox_ids, settled.messages)
