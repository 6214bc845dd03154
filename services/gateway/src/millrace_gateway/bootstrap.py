"""The gateway's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from prometheus_client import CollectorRegistry

from millrace_common.db import create_engine
from millrace_common.kafka import create_broker
from millrace_common.outbox import OutboxRelay
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import Namespace

from millrace_gateway.api import errors, records, runs, workflows
from millrace_gateway.settings import PRODUCER, GatewaySettings



def build(settings: GatewaySettings) -> FastAPI:
    registry = CollectorRegistry()
    broker = create_broker(settings)
    engine = create_engine(settings)
    relay = OutboxRelay(engine, broker, PRODUCER)
    app = create_app(ServiceParts(settings, broker, engine, registry, background=(relay.run,)), title="Millrace API")
    app.state.engine = engine
    app.state.relay = relay
    app.state.namespace = Namespace(settings.namespace)
    errors.install(app)
    for router in (workflows.router, records.router, runs.router):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
