"""The node runner's composition root."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from millrace_common.db import create_engine
from millrace_common.kafka import DeadLetters, create_broker
from millrace_common.metrics import ConsumerMetrics
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import ConsumerGroup, Namespace

from millrace_node_runner.adapters.http import HttpRequester
from millrace_node_runner.entrypoints import kafka
from millrace_node_runner.executor import NodeExecutor
from millrace_node_runner.settings import NodeRunnerSettings


def build(settings: NodeRunnerSettings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    broker = create_broker(settings)
    engine = create_engine(settings)
    client = httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency),
    )
    executor = NodeExecutor(HttpRequester(client, settings.http_response_cap_bytes))
    dead_letters = DeadLetters(broker, Namespace(settings.namespace), ConsumerGroup.NODE_RUNNER, metrics)
    kafka.register(broker, settings, executor, dead_letters, metrics)
    parts = ServiceParts(settings, broker, engine, registry, closers=(client.aclose,))
    return create_app(parts, title="Millrace node runner")
