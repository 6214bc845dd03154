"""The node runner's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import (
    NODES_READY_AI,
    NODES_READY_CODE,
    NODES_READY_HTTP,
    NODES_READY_OTHER,
    NODES_READY_RECORD,
    NODES_RESULTS,
    NODES_TEST_RESULTS,
    ConsumerGroup,
    Namespace,
)
from millrace_common.language.workflow_nodes import node_types
from millrace_common.platform.code_sandbox import CodeSandbox, code_limits
from millrace_common.platform.db import create_engine
from millrace_common.platform.gauges import (
    ConsumerLagCollector,
    GaugeCollection,
    OutboxCollector,
    Subscription,
)
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics, PlatformGauges
from millrace_common.platform.outbox import RECORDS_PRODUCER, OutboxRelay
from millrace_common.platform.producer import Producer
from millrace_common.platform.secrets import SecretBox
from millrace_common.platform.service import ServiceParts, operations_app
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from millrace_node_runner.adapters.ai import ChatEndpoint
from millrace_node_runner.adapters.ai_ledger import AiLedger
from millrace_node_runner.adapters.http import HttpCaller
from millrace_node_runner.adapters.kafka_publisher import TopicPublisher
from millrace_node_runner.adapters.network import GuardedClients, Resolver, SystemResolver
from millrace_node_runner.adapters.notification_channels import Channels
from millrace_node_runner.adapters.notification_store import LinkBases
from millrace_node_runner.adapters.record_store import RecordStore
from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_node_runner.adapters.workflow_inputs import WorkflowInputs
from millrace_node_runner.domain.notifications import Retry
from millrace_node_runner.entrypoints import kafka
from millrace_node_runner.entrypoints.clock import NotificationLoop, retention_loop
from millrace_node_runner.entrypoints.kafka import NodeCommands
from millrace_node_runner.metrics import AiMetrics, HttpMetrics, NodeMetrics
from millrace_node_runner.service_layer.agent import AgentTurns
from millrace_node_runner.service_layer.ai import AiCalls, AiNodes
from millrace_node_runner.service_layer.code import CodeNodes
from millrace_node_runner.service_layer.executor import NodeExecutor, NodeResult
from millrace_node_runner.service_layer.http import HttpNodes
from millrace_node_runner.service_layer.kafka import KafkaNodes
from millrace_node_runner.service_layer.notifications import Notifications
from millrace_node_runner.service_layer.plugins import (
    GuardedHttp,
    PluginLoadError,
    PluginServices,
    missing_handlers,
    plugin_handlers,
)
from millrace_node_runner.service_layer.records import RecordNodes
from millrace_node_runner.settings import PRODUCER, NodeRunnerSettings


def build(
    settings: NodeRunnerSettings,
    *,
    resolver: Resolver | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    registry = CollectorRegistry()
    consumer_metrics = ConsumerMetrics(registry)
    producer = Producer(settings)
    engine = create_engine(settings)
    namespace = Namespace(settings.namespace)
    # The runner's rows are record events, stored under the name the gateway writes them with too, so
    # one relay pass at a time keeps a record's order; its own name's relay publishes rows an earlier
    # version left under it.
    relay = OutboxRelay(engine, producer, PRODUCER)
    records_relay = OutboxRelay(engine, producer, RECORDS_PRODUCER)

    resolver = resolver or SystemResolver()
    clients = GuardedClients(
        resolver,
        max_connections=settings.http_concurrency + settings.ai_concurrency,
        max_idle_connections=settings.http_max_idle_connections,
    )
    box = _secret_box(settings)
    tenants = TenantConfig(engine, box, policy_cache_seconds=settings.network_policy_cache_seconds)
    http_caller = HttpCaller(
        clients, max_redirects=settings.http_max_redirects, clock=clock, metrics=HttpMetrics(registry)
    )
    http = HttpNodes(tenants, http_caller, response_cap_ceiling=settings.http_response_cap_bytes, clock=clock)
    ai_calls = AiCalls(ChatEndpoint(clients, clock), AiLedger(engine), clock, AiMetrics(registry))
    ai = AiNodes(tenants, ai_calls)
    agent = AgentTurns(tenants, WorkflowInputs(engine), ai_calls)
    records = RecordNodes(
        RecordStore(engine, namespace, records_relay, max_scan=settings.record_find_max_scan),
        max_causation_depth=settings.max_causation_depth,
        clock=clock,
    )
    publisher = TopicPublisher(settings, engine)
    sandbox = CodeSandbox(code_limits(settings))
    built_in = {
        "http_request": http.request,
        "webhook_out": http.webhook,
        "ai_prompt": ai.run,
        "ai_analysis": ai.run,
        "ai_classification": ai.run,
        "ai_agent": agent.run,
        "record_create": records.create,
        "record_update": records.update,
        "record_find": records.find,
        "record_delete": records.delete,
        "task_notify": records.notify,
        "kafka_publish": KafkaNodes(publisher).publish,
        "code": CodeNodes(sandbox).run,
    }
    # The node types this runner runs: the registry's (the built-in ones and every installed
    # plugin's); a plugin's handler is built from the factory its declaration names.
    node_registry = node_types()
    guarded_http = GuardedHttp(tenants, http_caller, response_cap_ceiling=settings.http_response_cap_bytes)
    services = PluginServices(guarded_http, clock)
    notifications = NotificationLoop(
        Notifications(
            engine,
            Channels(engine, box, tenants, guarded_http, resolver),
            clock,
            retry=Retry(
                settings.notification_retry_base_seconds,
                settings.notification_retry_max_seconds,
                settings.notification_max_attempts,
            ),
            links=LinkBases(settings.public_base_url, settings.approval_base_url),
            lookback=timedelta(hours=settings.notification_lookback_hours),
        ),
        poll_seconds=settings.notification_poll_seconds,
    )
    handlers = {**built_in, **plugin_handlers(node_registry, services)}
    missing = missing_handlers(node_registry, handlers)
    if missing:
        raise PluginLoadError(f"no handler for the node types {', '.join(missing)}")
    executor = NodeExecutor(handlers)
    results_topic = namespace.topic(NODES_RESULTS)
    test_results_topic = namespace.topic(NODES_TEST_RESULTS)

    async def publish(result: NodeResult) -> None:
        # A node tested from the editor answers the gateway that awaits it, never the orchestrator.
        topic = test_results_topic if result.test else results_topic
        await producer.publish(result.to_bytes(), topic=topic, key=str(result.run_id).encode())

    dead_letters = DeadLetters(producer, namespace, ConsumerGroup.NODE_RUNNER, consumer_metrics)
    commands = NodeCommands(
        settings, executor.execute, publish, dead_letters, consumer_metrics, NodeMetrics(registry)
    )
    consumer = kafka.consumer(
        settings,
        [
            (NODES_READY_AI, settings.ai_concurrency),
            (NODES_READY_HTTP, settings.http_concurrency),
            (NODES_READY_RECORD, settings.record_concurrency),
            (NODES_READY_OTHER, settings.other_concurrency),
            (NODES_READY_CODE, settings.code_concurrency),
        ],
        commands,
        dead_letters,
        consumer_metrics,
    )
    gauges = _gauges(settings, registry, engine)
    retention = retention_loop(engine, settings, clock)
    parts = ServiceParts(
        settings,
        producer,
        engine,
        registry,
        background=(
            consumer.run,
            relay.run,
            records_relay.run,
            retention.run,
            gauges.run,
            notifications.run,
        ),
        closers=(clients.aclose, publisher.close, sandbox.stop),
        consumers=(consumer.membership,),
    )
    return operations_app(parts)


def _gauges(
    settings: NodeRunnerSettings, registry: CollectorRegistry, engine: AsyncEngine
) -> GaugeCollection:
    platform = PlatformGauges(registry)
    lanes = (NODES_READY_AI, NODES_READY_HTTP, NODES_READY_RECORD, NODES_READY_OTHER, NODES_READY_CODE)
    collectors = [
        ConsumerLagCollector(settings, [Subscription(ConsumerGroup.NODE_RUNNER, lanes)], platform),
        OutboxCollector(engine, PRODUCER, platform),
    ]
    return GaugeCollection(collectors, platform, interval_seconds=settings.metrics_interval_seconds)


def _secret_box(settings: NodeRunnerSettings) -> SecretBox | None:
    """Without a key the runner still runs nodes that need no secret (the others fail saying why);
    a key that is set but malformed stops the start."""
    return None if settings.encryption_key is None else SecretBox(settings.encryption_key)
