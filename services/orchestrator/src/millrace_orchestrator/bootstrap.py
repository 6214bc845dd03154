"""The orchestrator's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from millrace_common.db import create_engine
from millrace_common.kafka import DeadLetters, create_broker
from millrace_common.metrics import ConsumerMetrics
from millrace_common.outbox import OutboxRelay
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import ConsumerGroup, Namespace

from millrace_common.messages.envelope import utc_now

from millrace_orchestrator.adapters.run_store import DefinitionCache
from millrace_orchestrator.adapters.timer_loop import TimerLoop
from millrace_orchestrator.entrypoints import kafka
from millrace_orchestrator.handlers import PRODUCER, RunMessageHandler
from millrace_orchestrator.settings import OrchestratorSettings


def build(settings: OrchestratorSettings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    broker = create_broker(settings)
    engine = create_engine(settings)
    namespace = Namespace(settings.namespace)
    relay = OutboxRelay(engine, broker, PRODUCER)
    handler = RunMessageHandler(engine, namespace, DefinitionCache())
    timer_loop = TimerLoop(engine, namespace, PRODUCER, relay, utc_now)
    dead_letters = DeadLetters(broker, namespace, ConsumerGroup.ORCHESTRATOR, metrics)
    kafka.register(broker, settings, handler, relay, dead_letters, metrics)
    parts = ServiceParts(settings, broker, engine, registry, background=(relay.run, timer_loop.run))
    return create_app(parts, title="Millrace orchestrator")
