"""Readiness, judged without I/O: the caller samples, these decide.

:class:`Hysteresis` keeps a dependency's reachability from flapping. :func:`observe` and :func:`judge`
tell whether a Kafka consumer does its work: it holds an assignment (the member joined its group and
was given its partitions, possibly none), every topic it reads exists, and every partition it holds
whose end is ahead of its position moves. A consumer is judged from samples of those taken over time
(:class:`ConsumerSample`), folded into a :class:`ConsumerHistory`.

A member given no partitions is ready: a group with more members than partitions leaves the extra
ones waiting as standbys, and that is the group working as meant. A member that has not joined (or
is between a revocation and its next assignment) holds no assignment; after ``assignment_seconds``
that makes it not ready, whether since the start or since it lost its assignment. A partition is
stalled when its end is ahead of its position and the position has not moved for
``progress_seconds``; an idle partition (no lag) is never stalled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

Partition = tuple[str, int]
"""A topic's name and a partition number (aiokafka's ``TopicPartition`` is one)."""


@dataclass
class Hysteresis:
    """A dependency that was reachable is reported down only after ``to_down`` failed checks in a
    row, and one that went down is reported up again only after ``to_up`` successful checks in a row.
    The first success after start counts at once, so a starting service is ready as soon as it can be."""

    to_down: int = 2
    to_up: int = 2
    up: bool = False
    ever_up: bool = False
    _streak: int = field(default=0, repr=False)

    def observe(self, reachable: bool) -> bool:
        """Record one check's result; returns whether the dependency is reported reachable now."""
        if reachable == self.up:
            self._streak = 0
            return self.up
        self._streak += 1
        needed = self.to_down if self.up else (self.to_up if self.ever_up else 1)
        if self._streak >= needed:
            self.up, self._streak = reachable, 0
            self.ever_up = self.ever_up or reachable
        return self.up


@dataclass(frozen=True)
class ReadinessLimits:
    assignment_seconds: float
    progress_seconds: float


@dataclass(frozen=True)
class ConsumerSample:
    """A consumer at one moment (``at``: seconds on a monotonic clock).

    ``assigned`` is None while the consumer holds no assignment, the set of its partitions (possibly
    empty) once it has one. ``positions`` (the next offset to be processed: the committed one) and
    ``ends`` (the partitions' end offsets) may leave partitions out when they could not be read; such
    a partition is judged on what was known before."""

    at: float
    assigned: frozenset[Partition] | None
    missing_topics: frozenset[str] = frozenset()
    positions: Mapping[Partition, int] = field(default_factory=dict)
    ends: Mapping[Partition, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionWatch:
    position: int
    lag: int
    still_since: float
    """Since when the position has stood with lag: the first sample of those in a row that saw the
    same position and lag (the sample's own time when it moved, or had no lag, or is the first)."""


@dataclass(frozen=True)
class ConsumerHistory:
    consumer: str
    unassigned_since: float | None
    ever_assigned: bool = False
    missing_since: Mapping[str, float] = field(default_factory=dict)
    partitions: Mapping[Partition, PartitionWatch] = field(default_factory=dict)


def started(consumer: str, at: float) -> ConsumerHistory:
    """The history of a consumer that started at ``at``, holding nothing yet."""
    return ConsumerHistory(consumer, unassigned_since=at)


def observe(history: ConsumerHistory, sample: ConsumerSample) -> ConsumerHistory:
    """The history with one more sample, taken after the ones before."""
    at = sample.at
    missing = {topic: history.missing_since.get(topic, at) for topic in sample.missing_topics}
    if sample.assigned is None:
        since = at if history.unassigned_since is None else history.unassigned_since
        return replace(history, unassigned_since=since, missing_since=missing, partitions={})
    partitions: dict[Partition, PartitionWatch] = {}
    for partition in sample.assigned:
        before = history.partitions.get(partition)
        position, end = sample.positions.get(partition), sample.ends.get(partition)
        if position is None or end is None:
            if before is not None:
                partitions[partition] = before
            continue
        lag = max(0, end - position)
        stood = before is not None and before.lag > 0 and before.position == position and lag > 0
        partitions[partition] = PartitionWatch(position, lag, before.still_since if before and stood else at)
    return replace(
        history, unassigned_since=None, ever_assigned=True, missing_since=missing, partitions=partitions
    )


def judge(history: ConsumerHistory, *, now: float, limits: ReadinessLimits) -> list[str]:
    """Why the consumer is not ready at ``now``, each reason naming the consumer; empty when ready."""
    reasons = []
    name = history.consumer
    if history.unassigned_since is not None:
        waited = now - history.unassigned_since
        if waited >= limits.assignment_seconds:
            since = "since it lost its last one" if history.ever_assigned else "since it started"
            reasons.append(f"consumer {name}: no partition assignment for {waited:.0f} s ({since})")
    for topic, since in sorted(history.missing_since.items()):
        if now - since >= limits.assignment_seconds:
            reasons.append(f"consumer {name}: topic {topic} does not exist (for {now - since:.0f} s)")
    for (topic, number), watch in sorted(history.partitions.items()):
        stood = now - watch.still_since
        if watch.lag > 0 and stood >= limits.progress_seconds:
            reasons.append(
                f"consumer {name}: no progress on {topic}[{number}] for {stood:.0f} s while its lag is "
                f"{watch.lag} (position {watch.position})"
            )
    return reasons
