"""The gateway's composition root."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from prometheus_client import CollectorRegistry

from millrace_common.db import create_engine
from millrace_common.kafka import create_broker
from millrace_common.outbox import OutboxRelay
from millrace_common.secrets import SecretBox
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import Namespace

from millrace_gateway.adapters.security import Passwords, Tokens
from millrace_gateway.api import auth, catalog, errors, records, runs, tasks, tenant_settings, webhooks, workflows
from millrace_gateway.settings import JWT_AUDIENCE, JWT_ISSUER, PRODUCER, GatewaySettings

MAX_BODY_BYTES = 2 * 1024 * 1024


class MissingSetting(RuntimeError):
    pass


def build(settings: GatewaySettings) -> FastAPI:
    if settings.jwt_secret is None:
        raise MissingSetting("MILLRACE_JWT_SECRET is not set: the gateway cannot sign access tokens")
    registry = CollectorRegistry()
    broker = create_broker(settings)
    engine = create_engine(settings)
    relay = OutboxRelay(engine, broker, PRODUCER)
    app = create_app(ServiceParts(settings, broker, engine, registry, background=(relay.run,)), title="Millrace API")
    app.state.settings = settings
    app.state.engine = engine
    app.state.relay = relay
    app.state.namespace = Namespace(settings.namespace)
    app.state.passwords = Passwords()
    app.state.secret_box = SecretBox(settings.encryption_key)
    app.state.tokens = Tokens(
        settings.jwt_secret.get_secret_value(),
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
        ttl=timedelta(seconds=settings.jwt_ttl_seconds),
    )
    errors.install(app, max_body_bytes=MAX_BODY_BYTES)
    for module in (auth, workflows, runs, records, tenant_settings, catalog, tasks):
        app.include_router(module.router)
    app.include_router(webhooks.build_router(broker))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
