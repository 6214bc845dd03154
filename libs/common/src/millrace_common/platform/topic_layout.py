"""How the registry's topics are laid out on a broker, from the settings: partitions (a default and
per-topic or per-family overrides), replication factor, ``min.insync.replicas``, retention and the
largest message; and the plan for growing existing topics to it. Pure: ``topic_admin`` does the I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from millrace_common.contracts.topics import ALL_TOPICS, Topic, topic_max_message_bytes

THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class DeadLetterTopics:
    """How the ``<topic>.dlq`` topics are made: their own partition count and retention (settings
    ``MILLRACE_DEAD_LETTER_PARTITIONS`` and ``MILLRACE_DEAD_LETTER_RETENTION_MS``)."""

    partitions: int = 3
    retention_ms: int = THIRTY_DAYS_MS


@dataclass(frozen=True)
class PartitionOverride:
    """``pattern=partitions``: the registry's topics whose name matches ``pattern`` (a name, or a
    family such as ``nodes.ready.*``) get ``partitions``."""

    pattern: str
    partitions: int


def parse_partition_overrides(text: str) -> tuple[PartitionOverride, ...]:
    """``MILLRACE_KAFKA_TOPIC_PARTITIONS``: comma-separated ``pattern=count`` entries; each pattern must
    match a registered topic (not a dead-letter topic), or the value is refused naming it."""
    overrides = []
    names = [topic.name for topic in ALL_TOPICS]
    for entry in filter(None, (part.strip() for part in text.split(","))):
        pattern, equals, count = entry.partition("=")
        pattern, count = pattern.strip(), count.strip()
        if not equals or not pattern or not count.isdigit() or not 1 <= int(count) <= 1000:
            raise ValueError(
                f"MILLRACE_KAFKA_TOPIC_PARTITIONS: {entry!r} is not topic=partitions (1 to 1000), "
                "e.g. nodes.ready.*=12,runs.commands=12"
            )
        if not fnmatch.filter(names, pattern):
            raise ValueError(
                f"MILLRACE_KAFKA_TOPIC_PARTITIONS: {pattern!r} matches no topic; the topics are "
                + ", ".join(names)
            )
        overrides.append(PartitionOverride(pattern, int(count)))
    return tuple(overrides)


@dataclass(frozen=True)
class TopicShape:
    partitions: int
    configs: dict[str, str]


@dataclass(frozen=True)
class TopicLayout:
    """Everything ``millrace-topics`` creates a topic with."""

    replication_factor: int = 1
    min_insync_replicas: int = 1
    partitions: int | None = None
    """Every registered topic's partitions; unset, each topic's own count in the registry."""
    overrides: tuple[PartitionOverride, ...] = ()
    """Per topic or family, over ``partitions``; the last entry that matches a topic wins."""
    retention_ms: int | None = None
    """retention.ms of the registered topics; unset, the broker's default (dead letters: their own)."""
    max_message_bytes: int = 1_000_000
    dead_letters: DeadLetterTopics = DeadLetterTopics()

    def partitions_of(self, topic: Topic) -> int:
        if topic.holds_dead_letters:
            return self.dead_letters.partitions
        matching = [o.partitions for o in self.overrides if fnmatch.fnmatchcase(topic.name, o.pattern)]
        if matching:
            return matching[-1]
        return self.partitions if self.partitions is not None else topic.partitions

    def shape_of(self, topic: Topic) -> TopicShape:
        """The partitions and topic configs ``topic`` is created with (and whose configs it keeps)."""
        configs = {
            "max.message.bytes": str(topic_max_message_bytes(self.max_message_bytes)),
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        if topic.holds_dead_letters:
            configs["retention.ms"] = str(self.dead_letters.retention_ms)
        elif self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return TopicShape(self.partitions_of(topic), configs)


@dataclass(frozen=True)
class Growth:
    topic: str
    partitions: int
    to: int


@dataclass(frozen=True)
class GrowthPlan:
    grow: tuple[Growth, ...]
    refused: tuple[str, ...]
    """Topics asked to shrink (Kafka cannot take partitions away) or that do not exist."""


def plan_growth(current: Mapping[str, int], wanted: Mapping[str, int], *, explicit: bool) -> GrowthPlan:
    """Which topics grow from ``current`` to ``wanted`` partitions. A topic with more partitions than
    wanted is refused when the count was asked for (``explicit``); growing to the settings leaves it
    as it is (it was grown on purpose, and Kafka cannot shrink it)."""
    grow, refused = [], []
    for topic, to in sorted(wanted.items()):
        partitions = current.get(topic)
        if partitions is None:
            refused.append(f"{topic} does not exist (millrace-topics creates it)")
        elif to > partitions:
            grow.append(Growth(topic, partitions, to))
        elif to < partitions and explicit:
            refused.append(
                f"{topic} has {partitions} partitions: Kafka cannot shrink a topic to {to} (a smaller count "
                "needs a new topic and a migration of its messages)"
            )
    return GrowthPlan(tuple(grow), tuple(refused))


ORDER_WARNING = """\
Growing a topic changes which partition a key's messages go to: Kafka picks the partition from the
key's hash modulo the partition count, so most keys (run ids on runs.* and nodes.*, record ids on
records.events) map to another partition afterwards. Messages already written stay where they are
and new ones of the same key go to the new partition, so a consumer may read a key's newer messages
before its older ones still waiting in the old partition: a run's node result before the command
that scheduled it, a record's update before its creation. Millrace relies on per-key order. Grow
when nothing of a key is waiting: stop taking new work (outside producers of records.events, webhook
callers, schedules), wait until no run is in progress and every consumer group's lag is zero
(millrace_consumer_lag), stop the services, grow, start them. Growing with messages still waiting
risks exactly those keys' order. New partitions are read from their start, so nothing written to
them is lost while consumers discover them (within a metadata refresh, 5 minutes at most).
Dead-letter topics keep no order and grow without this care."""
