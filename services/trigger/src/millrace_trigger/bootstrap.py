"""The trigger service's composition root."""

from __future__ import annotations

from datetime import timedelta

from millrace_common.contracts.topics import RECORDS_EVENTS, ConsumerGroup, Namespace
from millrace_common.platform.db import create_engine
from millrace_common.platform.gauges import (
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
from starlette.applications import Starlette

from millrace_trigger.adapters.clock import Clock, FileClock, SystemClock
from millrace_trigger.adapters.store import TriggerStore
from millrace_trigger.entrypoints import kafka
from millrace_trigger.entrypoints.clock import RetentionLoop, SchedulerLoop
from millrace_trigger.entrypoints.kafka_topics import KafkaTriggerTopics
from millrace_trigger.metrics import TriggerMetrics
from millrace_trigger.service_layer.firings import ConsumerShell, FiringLedger
from millrace_trigger.service_layer.kafka_messages import KafkaMessageHandler
from millrace_trigger.service_layer.records import RecordEventHandler
from millrace_trigger.service_layer.retention import Retention
from millrace_trigger.service_layer.schedules import Scheduler
from millrace_trigger.settings import CONSUMER, TriggerSettings


def build(settings: TriggerSettings) -> Starlette:
    registry = CollectorRegistry()
    consumer_metrics = ConsumerMetrics(registry)
    trigger_metrics = TriggerMetrics(registry)
    producer = Producer(settings)
    direct = DirectConnections(settings, size=2)  # the live relay's sweeps and deletes
    # The use cases' transactions: the record consumer, the Kafka-trigger consumer (and its topic
    # discovery), the scheduler and retention. Checked when handed out, as the engine's are.
    transactions = DirectConnections(
        settings,
        size=max(1, min(3, settings.db_max_connections - direct.size - 1)),
        name="transactions",
        check=True,
    )
    engine = create_engine(settings, reserved=direct.size + transactions.size)
    namespace = Namespace(settings.namespace)
    clock: Clock = FileClock(settings.trigger_clock_file) if settings.trigger_clock_file else SystemClock()
    store = TriggerStore(CONSUMER)
    # The StartRuns a transaction wrote are handed to the live relay once it committed: no pass reads
    # them back (rows of a process that died before handing them over are swept by any instance).
    relay = LiveRelay(settings, direct, CONSUMER)
    dead_letters = DeadLetters(producer, namespace, ConsumerGroup.TRIGGER, consumer_metrics)
    shell = ConsumerShell(
        transactions, store, FiringLedger(store, namespace, relay.tag, trigger_metrics), relay, clock
    )
    consumer = kafka.consumer(
        settings,
        RecordEventHandler(shell, max_causation_depth=settings.trigger_max_causation_depth),
        consumer_metrics,
        dead_letters,
    )
    # Its own dead letters: the group named in them is the Kafka-trigger consumer's.
    kafka_dead_letters = DeadLetters(producer, namespace, ConsumerGroup.TRIGGER_KAFKA, consumer_metrics)
    kafka_topics = KafkaTriggerTopics(
        settings, KafkaMessageHandler(shell), consumer_metrics, kafka_dead_letters
    )
    scheduler = SchedulerLoop(
        Scheduler(shell, trigger_metrics, grace=timedelta(seconds=settings.trigger_schedule_grace_seconds)),
        tick_seconds=settings.trigger_schedule_tick_seconds,
    )
    retention = RetentionLoop(
        Retention(transactions, store, clock, keep=timedelta(days=settings.trigger_retention_days))
    )
    platform = PlatformGauges(registry)
    subscriptions = [Subscription(ConsumerGroup.TRIGGER, (RECORDS_EVENTS,))]
    gauges = GaugeCollection(
        [
            ConsumerLagCollector(settings, subscriptions, platform),
            OutboxCollector(engine, CONSUMER, platform),
        ],
        platform,
        interval_seconds=settings.metrics_interval_seconds,
    )
    parts = ServiceParts(
        settings,
        producer,
        engine,
        registry,
        background=(consumer.run, kafka_topics.run, relay.run, scheduler.run, retention.run, gauges.run),
        closers=(direct.close, transactions.close),
        consumers=(consumer.membership,),
    )
    return operations_app(parts)
