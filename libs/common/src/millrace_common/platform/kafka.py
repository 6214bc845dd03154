"""Kafka: the key partitioner, the message-size check, and the dead-letter path for messages that
cannot be accepted. Producing is ``millrace_common.platform.producer``, consuming
``millrace_common.platform.consuming``."""

from __future__ import annotations

import base64
import functools
import logging
import random
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiokafka import ConsumerRecord
from aiokafka.partitioner import murmur2
from pydantic import ValidationError

from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, json_size, too_large
from millrace_common.contracts.messages.envelope import DeadLetter, DeadLetterCause
from millrace_common.contracts.topics import ConsumerGroup, Namespace, Topic
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

if TYPE_CHECKING:
    from millrace_common.platform.producer import Producer

log = logging.getLogger(__name__)


# A run's messages come within milliseconds of each other, so a few seconds of runs' keys is all the
# cache needs: each entry holds about 260 bytes, and 65,536 of them (the bound until 2026-12-05) grew
# each producing service by 17 MB over its first 65,536 runs (docs/benchmarks.md).
KEY_HASHES_REMEMBERED = 4_096


@functools.lru_cache(maxsize=KEY_HASHES_REMEMBERED)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The client's default choice of partition (Java-compatible murmur2 of the key), remembered per
    key: the pure-Python hash costs about 5 microseconds, and a run's messages share its key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]


class MessageLimitTooSmall(RuntimeError):
    """A topic accepts smaller messages than ``MILLRACE_KAFKA_MAX_MESSAGE_BYTES``: refuse to start
    rather than produce messages the broker refuses."""


async def check_message_limit(settings: ServiceSettings) -> None:
    """Every existing topic of the namespace accepts messages of ``kafka_max_message_bytes``, or
    :class:`MessageLimitTooSmall` names those that do not and how to fix them."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from millrace_common.contracts.topics import every_topic, topic_max_message_bytes

    namespace = Namespace(settings.namespace)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30_000, **client_options(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [namespace.topic(t) for t in every_topic() if namespace.topic(t) in existing]
        if not names:
            return
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    needed = topic_max_message_bytes(settings.kafka_max_message_bytes)
    short = {}
    for answer in answers:
        for resource in answer.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == "max.message.bytes" and int(entry["config_value"]) < needed:
                    short[resource["resource_name"]] = int(entry["config_value"])
    if short:
        listed = ", ".join(f"{name} ({limit})" for name, limit in sorted(short.items()))
        raise MessageLimitTooSmall(
            f"MILLRACE_KAFKA_MAX_MESSAGE_BYTES is {settings.kafka_max_message_bytes}, so every topic needs "
            f"max.message.bytes >= {needed}; these accept less: {listed}. Raise their max.message.bytes "
            "(kafka-configs --alter) or lower the setting."
        )


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "(message)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class DeadLetters:
    """Writes rejected messages, with the reason and the raw bytes, to ``<topic>.dlq``."""

    def __init__(
        self, producer: Producer, namespace: Namespace, group: ConsumerGroup, metrics: ConsumerMetrics
    ) -> None:
        self._producer = producer
        self._namespace = namespace
        self._group = group
        self._metrics = metrics

    async def send(
        self,
        topic: Topic,
        record: ConsumerRecord,
        reason: str,
        *,
        error: BaseException | None = None,
        attempts: int = 1,
        cause: DeadLetterCause | None = None,
    ) -> None:
        """Set ``record`` aside with ``reason``. ``cause`` classifies it; by default a failure when
        ``error`` is given (handling raised), otherwise a rejection (the consumer refused what it names)."""
        if cause is None:
            cause = DeadLetterCause.FAILED if error is not None else DeadLetterCause.REJECTED
        raw: bytes = record.value or b""
        key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else None
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            reason=reason[:2000],
            consumer_group=self._namespace.group(self._group),
            raw_value=raw.decode(errors="replace"),
            raw_value_base64=base64.b64encode(raw).decode(),
            headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
            error_type=type(error).__name__ if error is not None else None,
            trace=short_trace(error) if error is not None else None,
            attempts=attempts,
            cause=cause,
        )
        await self._producer.publish(
            fitted_letter(letter).model_dump_json().encode(),
            topic=self._namespace.topic(topic.dlq),
            key=record.key if isinstance(record.key, bytes) else None,
            headers={"millrace-reason": reason[:500]},
        )
        self._metrics.dead_lettered.labels(topic=topic.name, reason=cause.value).inc()
        log.warning(
            "dead-lettered a message",
            extra={
                "ids": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": reason[:300],
                    "cause": cause.value,
                    "attempts": attempts,
                }
            },
        )

    def topic_of(self, record: ConsumerRecord) -> Topic:
        """The registry's topic a polled record came from."""
        from millrace_common.contracts.topics import ALL_TOPICS

        for topic in ALL_TOPICS:
            if self._namespace.topic(topic) == record.topic:
                return topic
        raise LookupError(f"{record.topic} is not a registered topic of this namespace")


def short_trace(error: BaseException, frames: int = 6) -> str:
    """The error and the last few frames of its traceback: enough to find the fault, short enough
    to read in a dead letter."""
    lines = traceback.format_exception(error, limit=-frames)
    return "".join(lines)[-4000:]


def fitted_letter(letter: DeadLetter) -> DeadLetter:
    """The letter, small enough for its topic: a message near the limit cannot travel twice (as text
    and as base64), so the text goes first, then the base64's tail."""
    if too_large(letter.model_dump(mode="json"), MAX_PAYLOAD_BYTES) is None:
        return letter
    letter = letter.model_copy(update={"raw_value": "", "raw_truncated": True})
    if too_large(letter.model_dump(mode="json"), MAX_PAYLOAD_BYTES) is None:
        return letter
    room = MAX_PAYLOAD_BYTES - json_size(
        letter.model_copy(update={"raw_value_base64": ""}).model_dump(mode="json")
    )
    return letter.model_copy(
        update={"raw_value_base64": letter.raw_value_base64[: max(room - 64, 0) // 4 * 4]}
    )


class InjectedFault(RuntimeError):
    """The failure ``MILLRACE_FAULT_MARKER`` injects (tests only)."""


def inject_fault(marker: bytes | None, records: Sequence[ConsumerRecord]) -> None:
    """Fail as a broken handler would on a record carrying the test marker; nothing when unset."""
    if marker is not None and any(marker in (record.value or b"") for record in records):
        raise InjectedFault("a message carries the fault marker (MILLRACE_FAULT_MARKER)")
