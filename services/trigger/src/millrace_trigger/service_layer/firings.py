"""The trigger service's I/O shell, shared by its use cases: for a polled batch (or a scheduler
tick), one transaction that skips what was handled before, decides, records the firings with their
StartRun commands in the outbox; then the live relay is handed those rows and publishes them at once.
Offsets are committed by the consumer after this returns.

The transaction runs on a plain psycopg connection (``pg.DirectConnections.transaction``), not the
SQLAlchemy engine: a record batch's statements (nine with ``BEGIN`` and ``COMMIT``) cost the engine
about 5 ms of CPU, most of the service's time per batch at a few hundred events a second
(docs/benchmarks.md)."""

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
from millrace_common.platform.logs import bound
from millrace_common.platform.outbox import LiveRelay, Record, outbox_write, records
from millrace_common.platform.pg import DirectConnections, Statements

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

    async def settle(
        self,
        connection: Statements,
        firings: Sequence[Firing],
        now: datetime,
        *,
        also: Sequence[Outgoing] = (),
    ) -> Settled:
        """Records the fresh firings; their StartRuns, and the commands ``also`` (record events for
        runs waiting for them), go to the outbox in the caller's transaction."""
        unique = dedupe(firings)
        inserted = await self._store.record_firings(connection, unique, now)  # a known key is skipped
        recorded = [f for f in unique if f.idempotency_key in inserted]
        starts = [
            Outgoing(RUNS_COMMANDS, str(f.run_id), f.start_run())
            for f in recorded
            if f.outcome is Outcome.STARTED
        ]
        starts += also
        ids: list[int] = []
        if starts:
            write = outbox_write(self._namespace, self._producer, starts, returning_ids=True)
            ids = (await connection.execute(write.sql, write.params)).scalars()
        return Settled(recorded, len(firings) - len(recorded), ids, records(self._namespace, starts))

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
        by_topic: dict[str, dict[int, int]] = {}
        for delivery in deliveries:
            ends = by_topic.setdefault(delivery.record.topic, {})
            ends[delivery.record.partition] = max(
                ends.get(delivery.record.partition, -1), delivery.offset + 1
            )
        fresh = []
        for topic, ends in by_topic.items():
            positions = await self.store.move_positions(connection, topic, ends)
            fresh.extend(
                d for d in deliveries if d.record.topic == topic and d.offset >= positions[d.record.partition]
            )
        return fresh

    async def publish(self, settled: Settled, source: str) -> None:
        """Once the transaction committed: the StartRuns go to Kafka at once (the relay is handed the
        rows, and deletes them when Kafka acknowledged them), and the firings are counted."""
        self.ledger.count(settled, source)
        self.relay.hand_over_later(settled.outbox_ids, settled.messages)
