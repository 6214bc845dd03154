"""The trigger service's I/O shell: for a polled batch (or a scheduler tick), one transaction that
skips what was handled before, decides, records the firings with their StartRun commands in the
outbox; then the relay publishes. Offsets are committed by the consumer after this returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from aiokafka import ConsumerRecord
from millrace_common.kafka import DeadLetters
from millrace_common.logs import bound
from millrace_common.messages.records import RECORD_EVENT, AnyRecordEvent, RecordUpdated
from millrace_common.messages.webhooks import WEBHOOK_MESSAGE
from millrace_common.outbox import OutboxRelay, Outgoing, enqueue
from millrace_common.topics import RECORDS_EVENTS, RUNS_COMMANDS, WEBHOOKS_INBOUND, Namespace
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_trigger.adapters.clock import Clock
from millrace_trigger.adapters.store import ANY_PIPELINE, IndexKey, RecordKey, TriggerStore
from millrace_trigger.domain.changes import JsonObject
from millrace_trigger.domain.firings import Candidate, Firing, Outcome, throttle
from millrace_trigger.domain.matching import (
    TRIGGER_KINDS,
    dedupe,
    match_record_event,
    match_webhook,
    state_after,
)
from millrace_trigger.domain.schedule import CronSchedule, plan_slots, schedule_firings
from millrace_trigger.metrics import TriggerMetrics

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Settled:
    recorded: list[Firing]
    duplicates: int


class FiringLedger:
    """Records decided firings exactly once (by idempotency key), applies each workflow's hourly
    limit, and puts a StartRun in the outbox for each firing that starts a run."""

    def __init__(
        self, store: TriggerStore, namespace: Namespace, producer: str, metrics: TriggerMetrics
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._producer = producer
        self._metrics = metrics

    async def settle(self, connection: AsyncConnection, firings: Sequence[Firing], now: datetime) -> Settled:
        unique = dedupe(firings)
        known = await self._store.known_keys(connection, (f.idempotency_key for f in unique))
        fresh = [f for f in unique if f.idempotency_key not in known]
        starting = {f.workflow_id for f in fresh if f.outcome is Outcome.STARTED}
        started = await self._store.started_since(connection, starting, now - HOUR)
        decided = throttle(fresh, started)
        inserted = await self._store.record_firings(connection, decided, now)
        recorded = [f for f in decided if f.idempotency_key in inserted]
        await enqueue(
            connection,
            self._namespace,
            self._producer,
            [
                Outgoing(RUNS_COMMANDS, str(f.run_id), f.start_run())
                for f in recorded
                if f.outcome is Outcome.STARTED
            ],
        )
        return Settled(recorded, duplicates=len(firings) - len(recorded))

    def count(self, settled: Settled, source: str) -> None:
        """Metrics for a committed transaction."""
        for item in settled.recorded:
            self._metrics.firings.labels(source=item.source, kind=item.kind, outcome=item.outcome.value).inc()
            if item.outcome is Outcome.THROTTLED:
                self._metrics.throttled.labels(source=item.source).inc()
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
    """What the Kafka batch handlers share: the transaction, consumer positions, publishing after."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: TriggerStore,
        ledger: FiringLedger,
        relay: OutboxRelay,
        dead_letters: DeadLetters,
        clock: Clock,
    ) -> None:
        self.engine = engine
        self.store = store
        self.ledger = ledger
        self.relay = relay
        self.dead_letters = dead_letters
        self.clock = clock

    async def unhandled(
        self, connection: AsyncConnection, records: Sequence[ConsumerRecord]
    ) -> list[ConsumerRecord]:
        """The batch's records this consumer has not handled yet (by offset), positions moved past
        the whole batch when the transaction commits."""
        by_topic: dict[str, dict[int, int]] = {}
        for record in records:
            ends = by_topic.setdefault(record.topic, {})
            ends[record.partition] = max(ends.get(record.partition, -1), record.offset + 1)
        fresh = []
        for topic, ends in by_topic.items():
            positions = await self.store.claim_positions(connection, topic, ends)
            fresh.extend(r for r in records if r.topic == topic and r.offset >= positions[r.partition])
            await self.store.advance_positions(connection, topic, ends)
        return fresh

    async def publish(self, settled: Settled, source: str) -> None:
        self.ledger.count(settled, source)
        if any(f.outcome is Outcome.STARTED for f in settled.recorded):
            await self.relay.publish_pending()


class RecordEventHandler:
    """``records.events``: match each event to the candidates of its tenant, kind and pipeline."""

    def __init__(self, shell: ConsumerShell, *, max_causation_depth: int) -> None:
        self._shell = shell
        self._max_depth = max_causation_depth

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        shell = self._shell
        async with shell.engine.begin() as connection:
            now = shell.clock.now()
            fresh = await shell.unhandled(connection, records)
            events = [
                event for _, event in await shell.dead_letters.decode(RECORDS_EVENTS, fresh, RECORD_EVENT)
            ]
            firings = await self._decide(connection, events, now)
            settled = await shell.ledger.settle(connection, firings, now)
        await shell.publish(settled, "record")

    async def _decide(
        self, connection: AsyncConnection, events: Sequence[AnyRecordEvent], now: datetime
    ) -> list[Firing]:
        shell = self._shell
        if not events:
            return []
        lookups = [_lookups(e) for e in events]
        index = await shell.store.record_candidates(connection, (k for keys in lookups for k in keys))
        candidates = [[c for k in keys for c in index.get(k, ())] for keys in lookups]
        watched = [any(c.kind == "field_changed" for c in found) for found in candidates]
        derive = {
            _record_key(e)
            for e, w in zip(events, watched, strict=True)
            if w and isinstance(e, RecordUpdated) and e.old_data is None
        }
        last_seen: dict[RecordKey, JsonObject | None] = dict(await shell.store.last_seen(connection, derive))
        remembered: dict[RecordKey, tuple[JsonObject | None, UUID]] = {}
        firings: list[Firing] = []
        for event, found, is_watched in zip(events, candidates, watched, strict=True):
            key = _record_key(event)
            if found:
                firings.extend(
                    match_record_event(
                        event,
                        found,
                        last_seen=last_seen.get(key),
                        now=now,
                        max_causation_depth=self._max_depth,
                    )
                )
            if is_watched:
                last_seen[key] = state_after(event)
                remembered[key] = (last_seen[key], event.message_id)
        await shell.store.remember(connection, remembered, now)
        return firings


def _lookups(event: AnyRecordEvent) -> list[IndexKey]:
    # field_changed is looked up for every event: its workflows need the record's states remembered.
    kinds = _LOOKED_UP[type(event)]
    return [
        (event.tenant_id, kind, pipeline) for kind in kinds for pipeline in (event.pipeline_id, ANY_PIPELINE)
    ]


_LOOKED_UP = {
    kind: tuple(sorted({*trigger_kinds_of, "field_changed"}))
    for kind, trigger_kinds_of in TRIGGER_KINDS.items()
}


def _record_key(event: AnyRecordEvent) -> RecordKey:
    return (event.tenant_id, event.pipeline_id, event.record_id)


class WebhookHandler:
    """``webhooks.inbound``: each accepted call asks its workflow for a run (or records why not)."""

    def __init__(self, shell: ConsumerShell) -> None:
        self._shell = shell

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        shell = self._shell
        async with shell.engine.begin() as connection:
            now = shell.clock.now()
            fresh = await shell.unhandled(connection, records)
            calls = [m for _, m in await shell.dead_letters.decode(WEBHOOKS_INBOUND, fresh, WEBHOOK_MESSAGE)]
            candidates = await shell.store.workflow_candidates(connection, (m.workflow_id for m in calls))
            firings = [
                match_webhook(m, _same_tenant(candidates.get(m.workflow_id), m.tenant_id), now=now)
                for m in calls
            ]
            settled = await shell.ledger.settle(connection, firings, now)
        await shell.publish(settled, "webhook")


def _same_tenant(candidate: Candidate | None, tenant_id: str) -> Candidate | None:
    return candidate if candidate is not None and candidate.tenant_id == tenant_id else None


class Scheduler:
    """Fires cron slots. Each slot is claimed by its idempotency key in the transaction that moves the
    schedule's cursor past it, so it fires once across restarts and instances; instances share due
    schedules with ``skip locked``."""

    def __init__(
        self,
        shell: ConsumerShell,
        metrics: TriggerMetrics,
        *,
        tick_seconds: float,
        grace: timedelta,
        batch: int = 200,
    ) -> None:
        self._shell = shell
        self._metrics = metrics
        self._tick_seconds = tick_seconds
        self._grace = grace
        self._batch = batch

    async def tick(self) -> int:
        """Handle the schedules that are due now; returns how many."""
        shell = self._shell
        async with shell.engine.begin() as connection:
            now = shell.clock.now()
            due = await shell.store.due_schedules(connection, now, self._batch)
            firings: list[Firing] = []
            for schedule in due:
                # A clock that went back never moves a cursor back: a slot is never handled twice.
                cursor = max(schedule.cursor, now)
                candidate = schedule.candidate
                if candidate is None or candidate.config.cron is None:
                    await shell.store.move_cursor(
                        connection, schedule, cursor=cursor, next_slot=None, now=now
                    )
                    continue
                cron = CronSchedule(candidate.config.cron, candidate.config.timezone)
                plan = plan_slots(cron, cursor=schedule.cursor, now=now, grace=self._grace)
                firings.extend(schedule_firings(candidate, plan, now=now))
                await shell.store.move_cursor(
                    connection, schedule, cursor=cursor, next_slot=plan.next_slot, now=now
                )
            settled = await shell.ledger.settle(connection, firings, now)
        for item in settled.recorded:
            if item.outcome is Outcome.STARTED:
                slot = datetime.fromisoformat(str(item.data["schedule"]["slot"]))  # type: ignore[index]
                self._metrics.schedule_lag.observe(max(0.0, (now - slot).total_seconds()))
        await shell.publish(settled, "schedule")
        return len(due)

    async def run(self) -> None:
        """The scheduler loop (a background task of the service)."""
        while True:
            handled = await self.tick()
            if handled < self._batch:
                await asyncio.sleep(self._tick_seconds)


class Retention:
    """Prunes firings and webhook delivery ids past the retention period, once an hour."""

    def __init__(self, engine: AsyncEngine, store: TriggerStore, clock: Clock, *, keep: timedelta) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock
        self._keep = max(keep, 2 * HOUR)  # the hourly limit counts the last hour's firings

    async def run(self) -> None:
        while True:
            removed = await self._store.prune(self._engine, self._clock.now() - self._keep)
            if removed:
                log.info("pruned old firings and delivery ids", extra={"ids": {"removed": removed}})
            await asyncio.sleep(3600)
