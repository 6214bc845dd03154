"""What every consumer hands its handler: decoded messages (:class:`Delivery`), each with its topic,
record and acknowledgement, and the :class:`Decoder` that turns a polled record into one or refuses it
to its dead-letter topic with the reason. The consumers themselves are in ``platform.consuming`` (the
batch consumer), ``platform.lanes`` and ``platform.tailing``; they all take these."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import TypeAdapter, ValidationError

from millrace_common.contracts.messages.envelope import DeadLetterCause
from millrace_common.contracts.topics import Namespace, Topic
from millrace_common.platform.kafka import DeadLetters, describe_validation_error

T = TypeVar("T")


@dataclass(eq=False)
class Delivery(Generic[T]):
    """One decoded message, where it came from, and its acknowledgement."""

    topic: Topic
    record: ConsumerRecord
    message: T
    acked: bool = False
    on_ack: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def partition(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)

    @property
    def offset(self) -> int:
        return int(self.record.offset)

    def ack(self) -> None:
        """The message is handled (its effects are durable): its offset may be committed."""
        if not self.acked:
            self.acked = True
            if self.on_ack is not None:
                self.on_ack()


Handler = Callable[[Sequence[Delivery[Any]]], Awaitable[None]]
"""The one contract: handle a batch of decoded messages, acknowledging each once it is handled."""


def ack_all(deliveries: Sequence[Delivery[Any]]) -> None:
    for delivery in deliveries:
        delivery.ack()


class Decoder:
    """What each topic carries: turns polled records into deliveries. A record that does not decode is
    dead-lettered with the reason (with ``dead_letters``) or reported to ``unreadable``. A per-tenant
    family (``Topic.per_tenant``) stands for every tenant's topic of it: the consumer then subscribes
    by :attr:`pattern`, and each delivery's ``topic`` is the family (``record.topic`` the tenant's)."""

    def __init__(
        self,
        namespace: Namespace,
        adapters: Mapping[Topic, TypeAdapter[Any]],
        *,
        dead_letters: DeadLetters | None = None,
        unreadable: Callable[[ConsumerRecord, str], None] | None = None,
    ) -> None:
        self._by_name = {
            namespace.topic(topic): (topic, adapter)
            for topic, adapter in adapters.items()
            if not topic.per_tenant
        }
        self._families = [
            (re.compile(namespace.tenant_pattern(topic)), topic, adapter)
            for topic, adapter in adapters.items()
            if topic.per_tenant
        ]
        self._dead_letters = dead_letters
        self._unreadable = unreadable

    @property
    def topics(self) -> list[str]:
        """The single topics' names (a family's topics are found by :attr:`pattern`)."""
        return list(self._by_name)

    @property
    def pattern(self) -> str | None:
        """With a per-tenant family: a regular expression matching every topic read, else None."""
        if not self._families:
            return None
        alternatives = [re.escape(name) for name in self._by_name] + [p.pattern for p, _, _ in self._families]
        return "^(?:" + "|".join(alternatives) + ")$"

    def _entry(self, name: str) -> tuple[Topic, TypeAdapter[Any]]:
        found = self._by_name.get(name)
        if found is not None:
            return found
        for pattern, topic, adapter in self._families:
            if pattern.fullmatch(name):
                return topic, adapter
        raise LookupError(f"{name} is no topic this decoder reads")

    def topic_of(self, record: ConsumerRecord) -> Topic:
        return self._entry(record.topic)[0]

    def decoded(self, record: ConsumerRecord) -> Delivery[Any] | str:
        """The record as a delivery, or why it cannot be one."""
        topic, adapter = self._entry(record.topic)
        try:
            return Delivery(topic, record, adapter.validate_json(record.value or b""))
        except ValidationError as error:
            return describe_validation_error(error)

    async def refuse(
        self, record: ConsumerRecord, reason: str, cause: DeadLetterCause = DeadLetterCause.UNDECODABLE
    ) -> None:
        """Dead-letter (or report) a record that did not decode (or, with ``cause``, another refusal)."""
        if self._dead_letters is not None:
            await self._dead_letters.send(self.topic_of(record), record, reason, cause=cause)
        elif self._unreadable is not None:
            self._unreadable(record, reason)

    async def decode(self, records: Sequence[ConsumerRecord]) -> list[Delivery[Any]]:
        """The records that decode, in order; the others refused."""
        deliveries = []
        for record in records:
            decoded = self.decoded(record)
            if isinstance(decoded, str):
                await self.refuse(record, decoded)
            else:
                deliveries.append(decoded)
        return deliveries
