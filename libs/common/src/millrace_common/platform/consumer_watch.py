"""Whether a service's Kafka consumers do their work, for ``/readyz``: each consumer keeps a
:class:`Membership` (what Kafka last assigned it), and a :class:`ConsumerWatch` samples every
membership with the group's committed offsets and the partitions' end offsets on a timer, folding the
samples into the pure judge of ``millrace_common.platform.readiness``.

Positions are the committed offsets, read from Kafka (the same as the lag gauge reads): a consumer
commits only what it handled, so a handler stuck on a message holds its partition's committed offset
while the end moves on. A consumer without a group (the gateway's live feed) commits nothing and
reports its own positions instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from millrace_common.platform.offset_clients import OffsetClients
from millrace_common.platform.outages import OncePerInterval
from millrace_common.platform.readiness import (
    ConsumerHistory,
    ConsumerSample,
    ReadinessLimits,
    judge,
    observe,
    started,
)
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)


class Membership(ConsumerRebalanceListener):
    """What one consumer holds, as Kafka last told it. A group member passes it to ``subscribe`` as
    its rebalance listener (or calls it from its own): ``held`` is None from the start and from each
    revocation until the next assignment, then the assigned partitions (possibly none). A consumer
    without a group sets ``held`` and ``positions`` itself."""

    def __init__(self, name: str, topics: Collection[str], group: str | None) -> None:
        self.name = name
        self.topics = frozenset(topics)
        self.group = group
        self.held: frozenset[TopicPartition] | None = None
        self.positions: dict[TopicPartition, int] = {}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.held = None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.held = frozenset(assigned)

    def left(self) -> None:
        """The consumer stopped: it holds nothing until it joins again."""
        self.held = None


class ConsumerWatch:
    """Samples each membership every ``readiness_sample_seconds`` and judges it on demand; run
    :meth:`run` as a background task and ask :meth:`reasons`."""

    def __init__(
        self,
        settings: ServiceSettings,
        memberships: Sequence[Membership],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._memberships = memberships
        self._clock = clock
        self._limits = ReadinessLimits(
            assignment_seconds=settings.readiness_assignment_seconds,
            progress_seconds=settings.readiness_progress_seconds,
        )
        now = clock()
        self._histories: dict[str, ConsumerHistory] = {m.name: started(m.name, now) for m in memberships}
        self._clients = OffsetClients(
            settings, f"millrace-{settings.service_name}-readiness", request_timeout_ms=5_000
        )
        self._outages = OncePerInterval()

    def reasons(self) -> list[str]:
        """Why a consumer is not ready now; empty when every one is."""
        now = self._clock()
        return [
            reason
            for history in self._histories.values()
            for reason in judge(history, now=now, limits=self._limits)
        ]

    async def run(self) -> None:
        """Sample until cancelled, then close the clients."""
        try:
            while True:
                for membership in self._memberships:
                    await self.sample(membership)
                await asyncio.sleep(self._settings.readiness_sample_seconds)
        finally:
            await self._clients.close()

    async def sample(self, membership: Membership) -> None:
        """Fold one sample of ``membership`` into its history. When Kafka cannot be read, the sample
        has the assignment only (the consumer's own knowledge); the Kafka check reports the outage."""
        held = membership.held
        at = self._clock()
        try:
            sample = await asyncio.wait_for(self._read(membership, held, at), timeout=10)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if self._outages.due(membership.name):
                log.warning(
                    "readiness: consumer offsets could not be read (said once per 30 s)",
                    extra={
                        "ids": {
                            "consumer": membership.name,
                            "error": f"{type(error).__name__}: {error}"[:300],
                        }
                    },
                )
            await self._clients.close()
            sample = ConsumerSample(at, _partitions(held))
        self._histories[membership.name] = observe(self._histories[membership.name], sample)

    async def _read(
        self, membership: Membership, held: frozenset[TopicPartition] | None, at: float
    ) -> ConsumerSample:
        admin, offsets = await self._clients.get()
        # A topic with a partition held exists; the others are looked up (every topic's metadata, as
        # a request naming topics may create them on a broker that creates topics on first use).
        unseen = membership.topics - {tp.topic for tp in held or ()}
        missing = unseen - set(await offsets.topics()) if unseen else set()
        if not held:
            return ConsumerSample(at, _partitions(held), frozenset(missing))
        partitions = sorted(held)
        ends = await offsets.end_offsets(partitions)
        if membership.group is None:
            positions = {tp: membership.positions[tp] for tp in partitions if tp in membership.positions}
        else:
            committed = await admin.list_consumer_group_offsets(membership.group, partitions=partitions)
            firsts = await offsets.beginning_offsets(partitions)
            # A partition the group never committed is read from its first offset (auto_offset_reset).
            positions = {
                tp: committed[tp].offset if tp in committed and committed[tp].offset >= 0 else firsts[tp]
                for tp in partitions
            }
        return ConsumerSample(
            at,
            _partitions(held),
            frozenset(missing),
            positions={(tp.topic, tp.partition): p for tp, p in positions.items()},
            ends={(tp.topic, tp.partition): end for tp, end in ends.items()},
        )


def _partitions(held: frozenset[TopicPartition] | None) -> frozenset[tuple[str, int]] | None:
    return None if held is None else frozenset((tp.topic, tp.partition) for tp in held)
