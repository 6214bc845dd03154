"""Follows ``runs.approvals`` (the run events meant for it: see ``concerns_approvals``): approval
requests open approvals; decisions, cancellations, timeouts and finished runs close them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.run_events import (
    APPROVALS_EVENT,
    ApprovalDecided,
    ApprovalRequested,
    event_type,
)
from millrace_common.contracts.topics import RUNS_APPROVALS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

from millrace_approval.service_layer.approvals import CLOSING, Approvals

CONCERNS = frozenset(event_type(model) for model in (ApprovalRequested, ApprovalDecided, *CLOSING))
"""The run events the approval service acts on (its topic carries no other)."""


def consumer(
    settings: ServiceSettings, dead_letters: DeadLetters, metrics: ConsumerMetrics, approvals: Approvals
) -> BatchConsumer:
    decoder = Decoder(
        Namespace(settings.namespace), {RUNS_APPROVALS: APPROVALS_EVENT}, dead_letters=dead_letters
    )

    async def handle(deliveries: Sequence[Delivery[Any]]) -> None:
        with metrics.batch_seconds.labels(topic=RUNS_APPROVALS.name).time():
            for delivery in deliveries:
                event = delivery.message
                if event.type in CONCERNS:
                    await approvals.on_run_event(event)
                delivery.ack()
                metrics.handled.labels(
                    topic=RUNS_APPROVALS.name, group=ConsumerGroup.APPROVAL.value, outcome=event.type
                ).inc()

    return BatchConsumer(
        settings,
        ConsumerGroup.APPROVAL,
        decoder,
        handle,
        guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker),
    )
