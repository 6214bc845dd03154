"""The approval service's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from millrace_common.db import create_engine
from millrace_common.kafka import DeadLetters, create_broker
from millrace_common.metrics import ConsumerMetrics
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import ConsumerGroup, Namespace

from millrace_approval.entrypoints import kafka
from millrace_approval.settings import ApprovalSettings


def build(settings: ApprovalSettings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    broker = create_broker(settings)
    engine = create_engine(settings)
    dead_letters = DeadLetters(broker, Namespace(settings.namespace), ConsumerGroup.APPROVAL, metrics)
    kafka.register(broker, settings, dead_letters, metrics)
    return create_app(ServiceParts(settings, broker, engine, registry), title="Millrace approval")
