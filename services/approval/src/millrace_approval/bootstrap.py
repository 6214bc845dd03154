"""The approval service's composition root."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import RUNS_APPROVALS, ConsumerGroup, Namespace
from millrace_common.platform.api_app import create_app
from millrace_common.platform.auth import AUDIENCE, ISSUER, Passwords, Tokens
from millrace_common.platform.db import create_engine
from millrace_common.platform.gauges import (
    CallbackCollector,
    ConsumerLagCollector,
    GaugeCollection,
    OutboxCollector,
    Subscription,
)
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics, PlatformGauges
from millrace_common.platform.outbox import OutboxRelay
from millrace_common.platform.producer import Producer
from millrace_common.platform.service import ServiceParts
from prometheus_client import CollectorRegistry

from millrace_approval.entrypoints import kafka
from millrace_approval.entrypoints.clock import DeadlineLoop, retention_loop
from millrace_approval.entrypoints.http import api, inbox
from millrace_approval.metrics import ApprovalGauges, ApprovalMetrics
from millrace_approval.service_layer.approvals import Approvals
from millrace_approval.settings import PRODUCER, ApprovalSettings


class MissingSetting(RuntimeError):
    pass


def build(settings: ApprovalSettings) -> FastAPI:
    if settings.jwt_secret is None:
        raise MissingSetting(
            "MILLRACE_JWT_SECRET is not set: the approval service cannot verify access tokens"
        )
    secret = settings.jwt_secret.get_secret_value()
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    producer = Producer(settings)
    engine = create_engine(settings)
    namespace = Namespace(settings.namespace)
    relay = OutboxRelay(engine, producer, PRODUCER)
    approvals = Approvals(engine, relay, namespace, ApprovalMetrics(registry), utc_now)
    dead_letters = DeadLetters(producer, namespace, ConsumerGroup.APPROVAL, metrics)
    consumer = kafka.consumer(settings, dead_letters, metrics, approvals)
    deadlines = DeadlineLoop(approvals, poll_seconds=settings.deadline_poll_seconds)
    retention = retention_loop(engine, settings, utc_now)

    platform = PlatformGauges(registry)
    collectors = [
        ConsumerLagCollector(settings, [Subscription(ConsumerGroup.APPROVAL, (RUNS_APPROVALS,))], platform),
        OutboxCollector(engine, PRODUCER, platform),
        CallbackCollector(ApprovalGauges.name, ApprovalGauges(registry, engine).collect),
    ]
    gauges = GaugeCollection(collectors, platform, interval_seconds=settings.metrics_interval_seconds)
    parts = ServiceParts(
        settings,
        producer,
        engine,
        registry,
        background=(consumer.run, relay.run, deadlines.run, retention.run, gauges.run),
        consumers=(consumer.membership,),
    )
    app = create_app(parts, title="Millrace approval")
    app.state.settings = settings
    app.state.engine = engine
    app.state.approvals = approvals
    app.state.passwords = Passwords()
    app.state.tokens = Tokens(secret, issuer=ISSUER, audience=AUDIENCE, ttl=timedelta(hours=1))
    app.state.sessions = Tokens(
        secret, issuer=ISSUER, audience=AUDIENCE, ttl=timedelta(seconds=settings.session_ttl_seconds)
    )
    app.include_router(api.router)
    app.include_router(inbox.router)
    return app
