"""The gateway's view of ``runs.events``: one Kafka consumer per gateway process that fans each event out
to the live streams following its run or its workflow. (The run log in PostgreSQL, which streams replay
history from and fill gaps with, is read by ``adapters.runs``.)

The consumer has no consumer group: every gateway process must see every event, since any of them may
hold the stream a browser is reading. It starts at the end of the topic; what came before is the run
log's to tell. While no stream has been open for ``pause_after_seconds`` it fetches nothing (a
gateway nobody watches read every run event for nothing: about 0.5 ms of its CPU and a fetch of
Kafka's per node run), and the next stream starts it again from the end before it reads the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord
from millrace_common.contracts.topics import RUNS_EVENTS, Namespace
from millrace_common.platform.consumer_watch import Membership
from millrace_common.platform.consuming import Decoder, Delivery
from millrace_common.platform.settings import KafkaClientSettings
from millrace_common.platform.tables import runs
from millrace_common.platform.tailing import TailConsumer
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.domain.live import LiveEvent
from millrace_gateway.metrics import FeedMetrics

log = logging.getLogger(__name__)


class _Head(BaseModel):
    """The fields fan-out needs; the rest of the event is passed on as published."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: str
    run_id: UUID
    seq: int
    type: str
    workflow_id: UUID | None = None


_HEAD = TypeAdapter(_Head)


@dataclass(eq=False)
class Follower:
    """One live stream's inbox. When the stream reads too slowly the feed stops filling it and sets
    ``overflowed``; the stream then catches up from the run log (or ends, when it follows a workflow)."""

    tenant_id: str
    queue: asyncio.Queue[LiveEvent]
    overflows: Counter
    overflowed: bool = False
    closing: bool = False
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: LiveEvent) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.overflows.inc()
            self._wakeup.set()

    async def next(self, timeout: float) -> LiveEvent | None:
        """The next event, or None after ``timeout`` seconds, once the inbox has overflowed or once the
        process is stopping."""
        if self.overflowed or self.closing:
            return None
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({getter, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    def close(self) -> None:
        self.closing = True
        self._wakeup.set()

    def reset(self) -> None:
        """Forget what is queued and accept events again (the caller reads the run log next)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self._wakeup.clear()
        self.overflowed = False


class RunEventFeed:
    """Follows ``runs.events`` and hands each event to the followers of its run and of its workflow."""

    def __init__(
        self,
        engine: AsyncEngine,
        kafka: KafkaClientSettings,
        namespace: Namespace,
        metrics: FeedMetrics,
        *,
        client_id: str,
        fetch_max_wait_ms: int,
        full_fetch_max_wait_ms: int,
        inbox_size: int = 1000,
        known_runs: int = 20_000,
        pause_after_seconds: float = 30.0,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._tail = TailConsumer(
            kafka,
            client_id,
            Decoder(namespace, {RUNS_EVENTS: _HEAD}, unreadable=self._unreadable),
            self._fan_out,
            fetch_max_wait_ms=fetch_max_wait_ms,
            full_fetch_max_wait_ms=full_fetch_max_wait_ms,
            wanted=self._wanted,
            watched=self._followed,
            pause_after_seconds=pause_after_seconds,
        )
        metrics.reading.set_function(lambda: float(self._tail.ready.is_set() and not self._tail.paused))
        self._inbox_size = inbox_size
        self._by_run: dict[UUID, set[Follower]] = {}
        self._by_workflow: dict[UUID, set[Follower]] = {}
        self._workflow_of: OrderedDict[UUID, UUID] = OrderedDict()
        self._known_runs = known_runs
        self._closing = False

    @property
    def membership(self) -> Membership:
        """What the feed follows and how far it got, for readiness."""
        return self._tail.membership

    @property
    def ready(self) -> asyncio.Event:
        """Set while the feed follows the topic (from its end, or from where it was after a restart)."""
        return self._tail.ready

    @asynccontextmanager
    async def follow_run(self, tenant_id: str, run_id: UUID) -> AsyncIterator[Follower]:
        """A follower of one run's events while the context is open."""
        async with self._following(self._by_run, run_id, tenant_id, "run") as follower:
            yield follower

    @asynccontextmanager
    async def follow_workflow(self, tenant_id: str, workflow_id: UUID) -> AsyncIterator[Follower]:
        """A follower of the events of every run of one workflow while the context is open."""
        async with self._following(self._by_workflow, workflow_id, tenant_id, "workflow") as follower:
            yield follower

    @asynccontextmanager
    async def _following(
        self, index: dict[UUID, set[Follower]], key: UUID, tenant_id: str, follows: str
    ) -> AsyncIterator[Follower]:
        follower = Follower(tenant_id, asyncio.Queue(self._inbox_size), self._metrics.overflows)
        if self._closing:
            follower.close()
        index.setdefault(key, set()).add(follower)
        self._metrics.streams.labels(follows=follows).inc()
        try:
            # Registered first, so the tail is not paused under it; positioned before the caller
            # reads the run log, so an event committed after that read is in the inbox.
            await self._tail.watch_from_now()
            yield follower
        finally:
            self._metrics.streams.labels(follows=follows).dec()
            followers = index.get(key)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del index[key]

    def close_streams(self) -> None:
        """Make every open stream end now (the process is stopping; clients reconnect elsewhere), so
        the server's graceful shutdown does not wait out its timeout on them."""
        self._closing = True
        for followers in (*self._by_run.values(), *self._by_workflow.values()):
            for follower in followers:
                follower.close()

    async def run(self) -> None:
        """Consume until cancelled; after a restart it goes on from the offsets it had reached."""
        await self._tail.run()

    def _followed(self) -> bool:
        return bool(self._by_run or self._by_workflow)

    def _wanted(self, record: ConsumerRecord) -> bool:
        """Whether a stream here may want the event, judged before it is parsed: with a workflow
        followed, any (the event names its workflow); else only those of a followed run (the record's
        key is its run id). With nothing followed, the feed reads the topic without parsing it, which
        at a few hundred runs a second was most of an idle-browser gateway's work on it."""
        if self._by_workflow:
            return True
        if not self._by_run:
            return False
        if not isinstance(record.key, bytes):
            return True  # no run id in the key: parsed, and the decoder judges it
        try:
            return UUID(record.key.decode()) in self._by_run
        except (UnicodeDecodeError, ValueError):
            return True

    def _unreadable(self, record: ConsumerRecord, reason: str) -> None:
        self._metrics.unreadable.inc()
        log.warning(
            "live feed: unreadable run event",
            extra={"ids": {"offset": record.offset, "reason": reason[:300]}},
        )

    async def _fan_out(self, deliveries: Sequence[Delivery[Any]]) -> None:
        heads: list[tuple[_Head, bytes]] = [(d.message, d.record.value or b"") for d in deliveries]
        self._metrics.events.inc(len(heads))
        for head, _ in heads:
            if head.workflow_id is not None:
                self._remember(head.run_id, head.workflow_id)
        if self._by_workflow:
            await self._learn_workflows(
                {head.run_id for head, _ in heads if head.run_id not in self._workflow_of}
            )
        for head, raw in heads:
            event = LiveEvent(head.tenant_id, head.run_id, head.seq, head.type, raw)
            for follower in self._by_run.get(head.run_id, ()):
                if follower.tenant_id == head.tenant_id:
                    follower.offer(event)
            workflow_id = self._workflow_of.get(head.run_id)
            for follower in self._by_workflow.get(workflow_id, ()) if workflow_id else ():
                if follower.tenant_id == head.tenant_id:
                    follower.offer(event)

    async def _learn_workflows(self, run_ids: set[UUID]) -> None:
        if not run_ids:
            return
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(runs.c.run_id, runs.c.workflow_id).where(runs.c.run_id.in_(run_ids))
            )
            for row in rows:
                self._remember(row.run_id, row.workflow_id)

    def _remember(self, run_id: UUID, workflow_id: UUID) -> None:
        self._workflow_of[run_id] = workflow_id
        self._workflow_of.move_to_end(run_id)
        while len(self._workflow_of) > self._known_runs:
            self._workflow_of.popitem(last=False)
