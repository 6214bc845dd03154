"""The gateway's composition root."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import Namespace
from millrace_common.language.workflow_nodes import require_node_types
from millrace_common.platform.api_app import create_app
from millrace_common.platform.code_sandbox import CodeSandbox, code_limits
from millrace_common.platform.db import create_engine
from millrace_common.platform.gauges import GaugeCollection, OutboxCollector
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.metrics import ConsumerMetrics, PlatformGauges
from millrace_common.platform.outbox import RECORDS_PRODUCER, OutboxRelay
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.producer import Producer
from millrace_common.platform.pruning import PruneLoop
from millrace_common.platform.secrets import SecretBox
from millrace_common.platform.service import ServiceParts
from prometheus_client import CollectorRegistry

from millrace_gateway.adapters import dead_letters as dead_letters_table
from millrace_gateway.adapters.approval_api import ApprovalApi
from millrace_gateway.adapters.kafka_tools import KafkaTools
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.replays import ReplayPublisher
from millrace_gateway.adapters.run_event_feed import FeedMetrics, RunEventFeed
from millrace_gateway.adapters.security import Passwords, Tokens
from millrace_gateway.adapters.stop_signals import on_stop_signal
from millrace_gateway.adapters.tested_nodes import TestedNodes
from millrace_gateway.adapters.webhook_intake import WebhookIntake
from millrace_gateway.adapters.webhook_targets import WebhookTargets
from millrace_gateway.domain.bulk import BulkTokens
from millrace_gateway.domain.topic_grants import services_principal
from millrace_gateway.entrypoints.clock import ReplayLoop
from millrace_gateway.entrypoints.http import (
    ai_usage,
    approvals,
    auth,
    catalog,
    dead_letters,
    errors,
    kafka_topics,
    live,
    node_tests,
    notifications,
    records,
    run_bulk,
    runs,
    tasks,
    tenant_settings,
    web,
    webhooks,
    workflows,
)
from millrace_gateway.entrypoints.kafka import dead_letter_consumer
from millrace_gateway.metrics import PendingDeadLetters, WebhookOutcomes, webhook_requests
from millrace_gateway.service_layer.accounts import Accounts
from millrace_gateway.service_layer.approval_forwarding import ApprovalForwarding
from millrace_gateway.service_layer.bulk import BulkRuns
from millrace_gateway.service_layer.dead_letters import DeadLetterDesk
from millrace_gateway.service_layer.live import LiveRuns
from millrace_gateway.service_layer.node_tests import NodeTests
from millrace_gateway.service_layer.notifications import NotificationDesk
from millrace_gateway.service_layer.records import Pipelines, Records
from millrace_gateway.service_layer.runs import Runs
from millrace_gateway.service_layer.tasks import Tasks
from millrace_gateway.service_layer.tenant_settings import TenantSettings
from millrace_gateway.service_layer.topic_grants import TopicGrantDesk
from millrace_gateway.service_layer.webhook_answers import WebhookAnswers
from millrace_gateway.service_layer.webhooks import WebhookReceiver
from millrace_gateway.service_layer.workflows import Workflows
from millrace_gateway.settings import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    PRODUCER,
    WEBHOOK_PRODUCER,
    GatewaySettings,
)

MAX_BODY_BYTES = 2 * 1024 * 1024
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"


class MissingSetting(RuntimeError):
    pass


def build(settings: GatewaySettings) -> FastAPI:
    if settings.jwt_secret is None:
        raise MissingSetting("MILLRACE_JWT_SECRET is not set: the gateway cannot sign access tokens")
    registry = CollectorRegistry()
    producer = Producer(settings)
    # Webhook lookups and intake, and their relay's deletes, on direct connections: half the process's
    # connection budget; the engine (the API, the outbox relay) gets the rest.
    direct = DirectConnections(settings, size=max(1, settings.db_max_connections // 2))
    engine = create_engine(settings, reserved=direct.size)
    namespace = Namespace(settings.namespace)
    relay = OutboxRelay(engine, producer, PRODUCER)
    # Record events under the name the node runner's record nodes write them with too (one key order).
    records_relay = OutboxRelay(engine, producer, RECORDS_PRODUCER)
    outbox = Outbox(namespace, relay, records_relay)
    # Webhook calls have a relay of their own, handed the rows the moment they are stored (their
    # StartRuns are keyed by run id, so no key's order spans the two relays).
    webhook_relay = LiveRelay(settings, direct, WEBHOOK_PRODUCER)
    intake = WebhookIntake(direct, webhook_relay, namespace)
    feed = RunEventFeed(
        engine,
        settings,
        namespace,
        FeedMetrics(registry),
        client_id=f"millrace-{settings.service_name}-live",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        full_fetch_max_wait_ms=settings.kafka_full_fetch_max_wait_ms,
        inbox_size=settings.live_inbox_size,
        pause_after_seconds=settings.live_feed_pause_seconds,
    )
    publisher = ReplayPublisher(settings)
    desk = DeadLetterDesk(engine, publisher, namespace=Namespace(settings.namespace))
    indexer = dead_letter_consumer(settings, desk, ConsumerMetrics(registry))
    replays = ReplayLoop(desk)
    prunes = PruneLoop(
        engine,
        [dead_letters_table.resolved_prune(timedelta(milliseconds=settings.dead_letter_retention_ms))],
        utc_now,
        interval_seconds=settings.retention_interval_seconds,
    )
    platform = PlatformGauges(registry)
    gauges = GaugeCollection(
        [
            OutboxCollector(engine, PRODUCER, platform),
            OutboxCollector(engine, WEBHOOK_PRODUCER, platform),
            OutboxCollector(engine, RECORDS_PRODUCER, platform),
            PendingDeadLetters(registry, desk.pending_counts),
        ],
        platform,
        interval_seconds=settings.metrics_interval_seconds,
    )
    tokens = Tokens(
        settings.jwt_secret.get_secret_value(),
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
        ttl=timedelta(seconds=settings.jwt_ttl_seconds),
    )
    box = SecretBox(settings.encryption_key)
    sandbox = CodeSandbox(code_limits(settings))
    tested = TestedNodes(
        settings, producer, namespace, client_id=f"millrace-{settings.service_name}-tested-nodes"
    )
    approval_forwarding = ApprovalForwarding(
        ApprovalApi(settings.approval_api_url) if settings.approval_api_url else None
    )

    background = (
        relay.run,
        records_relay.run,
        webhook_relay.run,
        feed.run,
        indexer.run,
        replays.run,
        prunes.run,
        gauges.run,
        on_stop_signal(feed.close_streams),
        tested.run,
    )
    app = create_app(
        ServiceParts(
            settings,
            producer,
            engine,
            registry,
            background=background,
            closers=(direct.close, publisher.close, sandbox.stop, approval_forwarding.close),
            start_checks=(require_node_types,),
            consumers=(feed.membership, indexer.membership, tested.membership),
        ),
        title="Millrace API",
    )
    app.state.settings = settings
    app.state.engine = engine  # the pool, for whoever runs the app without its lifespan to dispose of
    app.state.accounts = Accounts(engine, Passwords(), tokens)
    app.state.tenant_settings = TenantSettings(engine, box)
    targets = WebhookTargets(direct, fresh_seconds=settings.webhook_target_fresh_seconds)
    app.state.workflows = Workflows(engine, outbox, changed=targets.forget)
    app.state.pipelines = Pipelines(engine)
    app.state.records = Records(engine, outbox)
    app.state.runs = Runs(engine, outbox)
    app.state.bulk_runs = BulkRuns(
        engine,
        app.state.runs,
        BulkTokens(
            settings.jwt_secret.get_secret_value(), ttl=timedelta(seconds=settings.bulk_token_ttl_seconds)
        ),
        max_runs=settings.bulk_runs_max,
        clock=utc_now,
    )
    app.state.tasks = Tasks(engine)
    app.state.notifications = NotificationDesk(engine, box)
    app.state.webhooks = WebhookReceiver(engine, box, targets, intake)
    app.state.webhook_answers = WebhookAnswers(
        engine, feed, max_wait_seconds=settings.webhook_response_max_wait_seconds
    )
    app.state.dead_letters = desk
    app.state.topic_grants = TopicGrantDesk(
        engine,
        KafkaTools(settings),
        Namespace(settings.namespace),
        services_principal=services_principal(settings.kafka_sasl_username),
        apply_acls=settings.kafka_grant_acls,
    )
    app.state.node_tests = NodeTests(engine, sandbox, tested, utc_now)
    app.state.approval_forwarding = approval_forwarding
    app.state.live = LiveRuns(
        engine,
        feed,
        heartbeat_seconds=settings.live_heartbeat_seconds,
        run_wait_seconds=settings.live_run_wait_seconds,
    )

    errors.install(app, max_body_bytes=MAX_BODY_BYTES, webhook_body_bytes=webhooks.MAX_WEBHOOK_BODY_BYTES)
    # The webhook route first: it takes the most calls, and routes are matched in order.
    routers = (
        webhooks,
        auth,
        workflows,
        run_bulk,
        node_tests,
        runs,
        live,
        records,
        tenant_settings,
        ai_usage,
        catalog,
        tasks,
        dead_letters,
        kafka_topics,
        notifications,
        approvals,
    )
    for module in routers:
        app.include_router(module.router)
    # Added after the body limit, so it is the outer middleware and counts the limit's refusals too.
    app.add_middleware(WebhookOutcomes, requests=webhook_requests(registry))
    web.mount(app, WEB_DIST)
    return app
