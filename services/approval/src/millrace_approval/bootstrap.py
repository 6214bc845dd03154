"""The approval service's composition root."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from millrace_common.auth import AUDIENCE, ISSUER, Passwords, Tokens
from millrace_common.db import create_engine
from millrace_common.gauges import (
    CallbackCollector,
    ConsumerLagCollector,
    GaugeCollection,
    OutboxCollector,
    Subscription,
)
from millrace_common.kafka import DeadLetters, create_broker
from millrace_common.messages.envelope import utc_now
from millrace_common.metrics import ConsumerMetrics, PlatformGauges
from millrace_common.outbox import OutboxRelay
from millrace_common.problems import problem_response
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import RUNS_EVENTS, ConsumerGroup, Namespace
from prometheus_client import CollectorRegistry

from millrace_approval.domain.approvals import ApprovalRefused
from millrace_approval.entrypoints import api, inbox, kafka
from millrace_approval.handlers import PRODUCER, ApprovalMetrics, ApprovalNotFound, Approvals
from millrace_approval.metrics import ApprovalGauges
from millrace_approval.settings import ApprovalSettings


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
    broker = create_broker(settings)
    engine = create_engine(settings)
    namespace = Namespace(settings.namespace)
    relay = OutboxRelay(engine, broker, PRODUCER)
    approvals = Approvals(engine, relay, namespace, ApprovalMetrics(registry), utc_now)
    dead_letters = DeadLetters(broker, namespace, ConsumerGroup.APPROVAL, metrics)
    kafka.register(broker, settings, dead_letters, metrics, approvals)

    async def approval_deadlines() -> None:
        """Escalations come from the ``approval_deadlines`` table, so a restart loses none."""
        ticks = 0
        while True:
            await approvals.escalate_due()
            if ticks % 10 == 0:
                await approvals.refresh_pending_gauge()
            ticks += 1
            await asyncio.sleep(settings.deadline_poll_seconds)

    platform = PlatformGauges(registry)
    collectors = [
        ConsumerLagCollector(settings, [Subscription(ConsumerGroup.APPROVAL, (RUNS_EVENTS,))], platform),
        OutboxCollector(engine, PRODUCER, platform),
        CallbackCollector(ApprovalGauges.name, ApprovalGauges(registry, engine).collect),
    ]
    gauges = GaugeCollection(collectors, platform, interval_seconds=settings.metrics_interval_seconds)
    parts = ServiceParts(
        settings, broker, engine, registry, background=(relay.run, approval_deadlines, gauges.run)
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
    _install_errors(app)
    app.include_router(api.router)
    app.include_router(inbox.router)
    return app


def _install_errors(app: FastAPI) -> None:
    """The approval domain's refusals as problem details; every other error is already one
    (``millrace_common.problems``, installed by ``create_app``)."""

    @app.exception_handler(ApprovalRefused)
    async def refused(request: Request, error: ApprovalRefused) -> JSONResponse:
        return problem_response(request, error.status, error.code, str(error))

    @app.exception_handler(ApprovalNotFound)
    async def not_found(request: Request, _: ApprovalNotFound) -> JSONResponse:
        return problem_response(request, 404, "not_found", "approval not found")
