"""Gauges read from PostgreSQL and Kafka on a timer rather than counted in the code path: backlogs,
ages and lags are states, and a state is only right when read from where it lives.

A service builds a :class:`GaugeCollection` with the collectors it needs and runs
:meth:`GaugeCollection.run` as a background task. Each collector is read on its own; one that fails
is logged, flagged on ``millrace_gauge_collection_failing`` and tried again on the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import ConsumerGroup, Namespace, Topic
from millrace_common.platform.metrics import PlatformGauges
from millrace_common.platform.offset_clients import OffsetClients
from millrace_common.platform.outbox import BACKLOG, PLAIN_INDEX_SCANS_ONLY
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)


class Collector(ABC):
    """One source of gauges: ``name`` labels its failures, :meth:`collect` sets the gauges."""

    name: str

    @abstractmethod
    async def collect(self) -> None:
        """Read the source and set the gauges; an exception marks the collection failing."""

    async def close(self) -> None:
        return None


class OutboxCollector(Collector):
    """Backlog and oldest age of one producer's outbox rows, the rows its processes tag with their
    instance (``<producer>@<instance>``, see ``LiveRelay``) included (each service reports only its
    own, so summing over services never counts a row twice)."""

    name = "outbox"

    def __init__(
        self,
        engine: AsyncEngine,
        producer: str,
        gauges: PlatformGauges,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._gauges = gauges
        self._clock = clock

    async def collect(self) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(text(PLAIN_INDEX_SCANS_ONLY))
            row = (
                await connection.execute(
                    text(BACKLOG), {"producer": self._producer, "instances": f"{self._producer}@%"}
                )
            ).one()
        count, oldest = row
        self._gauges.outbox_backlog.labels(producer=self._producer).set(count)
        age = max(0.0, (self._clock() - oldest).total_seconds()) if oldest is not None else 0.0
        self._gauges.outbox_oldest_age.labels(producer=self._producer).set(age)


@dataclass(frozen=True)
class Subscription:
    """A consumer group of this service and the topics it reads."""

    group: ConsumerGroup
    topics: Sequence[Topic]


class ConsumerLagCollector(Collector):
    """Per topic and group: end offsets minus the group's committed offsets, summed over partitions.
    A partition the group never committed counts from its earliest offset (the groups start there)."""

    name = "consumer_lag"

    def __init__(
        self, settings: ServiceSettings, subscriptions: Sequence[Subscription], gauges: PlatformGauges
    ) -> None:
        self._settings = settings
        self._namespace = Namespace(settings.namespace)
        self._subscriptions = subscriptions
        self._gauges = gauges
        self._clients = OffsetClients(
            settings, f"millrace-{settings.service_name}-lag", request_timeout_ms=10_000
        )

    async def collect(self) -> None:
        try:
            admin, offsets = await self._clients.get()
            for subscription in self._subscriptions:
                await self._collect_group(admin, offsets, subscription)
        except Exception:
            # Rebuilt on the next pass: a client whose broker connection broke does not always recover.
            await self.close()
            raise

    async def _collect_group(
        self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer, subscription: Subscription
    ) -> None:
        committed = await admin.list_consumer_group_offsets(self._namespace.group(subscription.group))
        for topic in subscription.topics:
            name = self._namespace.topic(topic)
            # The broker's partitions, not the registry's count: the settings may lay topics out
            # otherwise, and a topic may have been grown (platform/topic_layout.py).
            known = offsets.partitions_for_topic(name)
            if known is None:
                await offsets.topics()  # fetches every topic's metadata once
                known = offsets.partitions_for_topic(name) or set()
            partitions = [TopicPartition(name, p) for p in sorted(known)]
            ends = await offsets.end_offsets(partitions)
            firsts = await offsets.beginning_offsets(partitions)
            lag = 0
            for tp in partitions:
                position = (
                    committed[tp].offset if tp in committed and committed[tp].offset >= 0 else firsts[tp]
                )
                lag += max(0, ends[tp] - position)
            self._gauges.consumer_lag.labels(topic=topic.name, group=subscription.group.value).set(lag)

    async def close(self) -> None:
        await self._clients.close()


class CallbackCollector(Collector):
    """A collector made of a coroutine function, for a service's own database gauges."""

    def __init__(self, name: str, collect: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._collect = collect

    async def collect(self) -> None:
        await self._collect()


class GaugeCollection:
    """Reads every collector each ``interval_seconds``; run :meth:`run` as a background task."""

    def __init__(
        self, collectors: Sequence[Collector], gauges: PlatformGauges, *, interval_seconds: float
    ) -> None:
        self._collectors = collectors
        self._gauges = gauges
        self._interval = interval_seconds
        self._failing: set[str] = set()

    async def collect_once(self) -> None:
        """One pass over every collector; a failing one does not stop the others."""
        for collector in self._collectors:
            try:
                await collector.collect()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._gauges.collect_errors.labels(collector=collector.name).set(1)
                # Once per outage, not once per pass: the gauge says how long it lasts.
                if collector.name not in self._failing:
                    self._failing.add(collector.name)
                    ids = {"collector": collector.name, "error": f"{type(error).__name__}: {error}"[:300]}
                    log.warning("collecting gauges failed", extra={"ids": ids})
            else:
                self._gauges.collect_errors.labels(collector=collector.name).set(0)
                if collector.name in self._failing:
                    self._failing.discard(collector.name)
                    log.info("collecting gauges works again", extra={"ids": {"collector": collector.name}})

    async def run(self) -> None:
        """Collect until cancelled, then close the collectors' clients."""
        try:
            while True:
                await self.collect_once()
                await asyncio.sleep(self._interval)
        finally:
            for collector in self._collectors:
                try:
                    await collector.close()
                except Exception:
                    log.warning(
                        "closing a gauge collector failed", extra={"ids": {"collector": collector.name}}
                    )
