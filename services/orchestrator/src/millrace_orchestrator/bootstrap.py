"""The orchestrator's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_events import RunEvent
from millrace_common.contracts.topics import NODES_RESULTS, RUNS_COMMANDS, ConsumerGroup, Namespace
from millrace_common.language.workflow_nodes import require_node_types
from millrace_common.platform.db import create_engine
from millrace_common.platform.gauges import (
    CallbackCollector,
    ConsumerLagCollector,
    GaugeCollection,
    OutboxCollector,
    Subscription,
)
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.metrics import ConsumerMetrics, PlatformGauges
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.producer import Producer
from millrace_common.platform.service import ServiceParts, operations_app
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from millrace_orchestrator.adapters.retention import RunLogRetention
from millrace_orchestrator.adapters.run_export import ExportFolder
from millrace_orchestrator.adapters.run_log import PostgresRunLog
from millrace_orchestrator.entrypoints import kafka
from millrace_orchestrator.entrypoints.clock import RetentionLoop, TimerLoop
from millrace_orchestrator.metrics import RunGauges, RunMetrics
from millrace_orchestrator.service_layer.retention import RunRetention
from millrace_orchestrator.service_layer.runs import RunMessages
from millrace_orchestrator.settings import OrchestratorSettings

PRODUCER = "orchestrator"
"""The producer name of the orchestrator's outbox rows (``orchestrator@<instance>`` per process)."""


def build(settings: OrchestratorSettings) -> Starlette:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    producer = Producer(settings)
    # The run log's and the relay's direct connections, and retention's, come out of the process's
    # connection budget first; the engine (the timer loop, the gauges) gets the rest.
    direct = DirectConnections(settings, size=max(2, settings.db_max_connections // 2))
    retention_connections = DirectConnections(settings, size=1)
    engine = create_engine(settings, reserved=direct.size + retention_connections.size)
    namespace = Namespace(settings.namespace)
    live_relay = LiveRelay(settings, direct, PRODUCER)
    run_metrics = RunMetrics(registry, per_workflow=settings.metrics_per_workflow)
    run_log = PostgresRunLog(direct, namespace, live_relay.tag)
    timer_loop = TimerLoop(engine, direct, namespace, live_relay, utc_now)

    def committed(events: Sequence[RunEvent]) -> None:
        run_metrics.observe(events)
        timer_loop.scheduled(events)

    runs = RunMessages(
        run_log,
        live_relay,
        observe=committed,
        count_batch=run_metrics.count_batch,
        max_depth=settings.sub_workflow_max_depth,
    )
    retention = RetentionLoop(
        run_retention(settings, retention_connections), interval_seconds=settings.retention_interval_seconds
    )
    dead_letters = DeadLetters(producer, namespace, ConsumerGroup.ORCHESTRATOR, metrics)
    consumer = kafka.consumer(settings, runs, dead_letters, metrics)
    gauges = _gauges(settings, registry, engine)
    background = (consumer.run, live_relay.run, timer_loop.run, retention.run, gauges.run)
    parts = ServiceParts(
        settings,
        producer,
        engine,
        registry,
        background=background,
        closers=(direct.close, retention_connections.close),
        start_checks=(require_node_types, run_log.require_migrations),
        consumers=(consumer.membership,),
    )
    return operations_app(parts)


def run_retention(settings: OrchestratorSettings, connections: DirectConnections) -> RunRetention:
    """The run log's retention as the settings say (the bench builds it the same way)."""
    export = ExportFolder(settings.retention_export_dir) if settings.retention_export_dir else None
    return RunRetention(
        RunLogRetention(connections),
        utc_now,
        default_keep=timedelta(days=settings.run_retention_days),
        processed_keep=timedelta(hours=settings.processed_messages_retention_hours),
        export=export,
        batch_runs=settings.retention_batch_runs,
    )


def _gauges(
    settings: OrchestratorSettings, registry: CollectorRegistry, engine: AsyncEngine
) -> GaugeCollection:
    platform = PlatformGauges(registry)
    subscriptions = [Subscription(ConsumerGroup.ORCHESTRATOR, (RUNS_COMMANDS, NODES_RESULTS))]
    collectors = [
        ConsumerLagCollector(settings, subscriptions, platform),
        OutboxCollector(engine, PRODUCER, platform),
        CallbackCollector(RunGauges.name, RunGauges(registry, engine).collect),
    ]
    return GaugeCollection(collectors, platform, interval_seconds=settings.metrics_interval_seconds)
