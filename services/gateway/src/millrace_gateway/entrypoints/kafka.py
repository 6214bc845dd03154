"""The gateway's consumer of the dead-letter topics: every ``<topic>.dlq`` record, indexed into
``dead_letters`` (``service_layer.dead_letters``) and acknowledged once the index has it. A record
that is not a dead letter at all is logged and skipped: there is no dead-letter topic of a
dead-letter topic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from millrace_common.contracts.messages.envelope import DeadLetter
from millrace_common.contracts.topics import ConsumerGroup, Namespace, dead_letter_topics
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, ack_all
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings
from pydantic import TypeAdapter

from millrace_gateway.service_layer.dead_letters import DeadLetterDesk

log = logging.getLogger(__name__)

DEAD_LETTER = TypeAdapter(DeadLetter)


def dead_letter_consumer(
    settings: ServiceSettings, desk: DeadLetterDesk, metrics: ConsumerMetrics
) -> BatchConsumer:
    group = ConsumerGroup.GATEWAY_DEAD_LETTERS

    def unreadable(record: ConsumerRecord, reason: str) -> None:
        metrics.handled.labels(topic=record.topic, group=group.value, outcome="unreadable").inc()
        log.error(
            "a dead-letter topic holds a record that is not a dead letter; skipped",
            extra={"ids": {"topic": record.topic, "offset": record.offset, "reason": reason[:300]}},
        )

    decoder = Decoder(
        Namespace(settings.namespace),
        {topic: DEAD_LETTER for topic in dead_letter_topics()},
        unreadable=unreadable,
    )

    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        await desk.index(deliveries)
        ack_all(deliveries)
        for name in {d.topic.name for d in deliveries}:
            handled = sum(1 for d in deliveries if d.topic.name == name)
            metrics.handled.labels(topic=name, group=group.value, outcome="indexed").inc(handled)

    return BatchConsumer(settings, group, decoder, consume)
