"""Follows ``runs.events``: approval requests open approvals; decisions, cancellations, timeouts and
finished runs close them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.run_events import (
    RUN_EVENT,
    ApprovalDecided,
    ApprovalRequested,
    event_type,
)
from millrace_common.contracts.topics import RUNS_EVENTS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

from millrace_approval.service_layer.approvals import CLOSING, Approvals

CONCERNS = frozenset(event_type(model) for model in (ApprovalRequested, ApprovalDecided, *CLOSING))
"""The run events the approval service acts on; it skips the rest without a transaction."""


def consumer(
    settings: ServiceSettings, dead_letters: DeadLetters, metrics: ConsumerMetrics, approvals: Approvals
) -> BatchConsumer:
    decoder = Decoder(Namespace(settings.namespace), {RUNS_EVENTS: RUN_EVENT}, dead_letters=dead_letters)

    async def handle(deliveries: Sequence[Delivery[Any]]) -> None:
        with metrics.batch_seconds.labels(topic=RUNS_EVENTS.name).time():
            for delivery in deliveries:
                event = delivery.message
                if event.type in CONCERNS:
                    await approvals.on_run_event(event)
                delivery.ack()
                metrics.handled.labels(
                    topic=RUNS_EVENTS.name, group=ConsumerGroup.APPROVAL.value, outcome=event.type
                ).inc()

    return BatchConsumer(
        settings,
        ConsumerGroup.APPROVAL,
        decoder,
        handle,
        guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker),
    )
