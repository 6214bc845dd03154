"""The gateway's composition root."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from millrace_common.db import create_engine
from millrace_common.kafka import create_broker
from millrace_common.outbox import OutboxRelay
from millrace_common.secrets import SecretBox
from millrace_common.service import ServiceParts, create_app
from millrace_common.topics import RUNS_EVENTS, Namespace
from prometheus_client import CollectorRegistry

from millrace_gateway import metrics
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.run_event_feed import FeedMetrics, RunEventFeed
from millrace_gateway.adapters.security import Passwords, Tokens
from millrace_gateway.adapters.stop_signals import on_stop_signal
from millrace_gateway.entrypoints.http import (
    auth,
    catalog,
    errors,
    live,
    records,
    runs,
    tasks,
    tenant_settings,
    webhooks,
    workflows,
)
from millrace_gateway.service_layer.accounts import Accounts
from millrace_gateway.service_layer.records import Pipelines, Records
from millrace_gateway.service_layer.runs import Runs
from millrace_gateway.service_layer.tasks import Tasks
from millrace_gateway.service_layer.tenant_settings import TenantSettings
from millrace_gateway.service_layer.workflows import Workflows
from millrace_gateway.settings import JWT_AUDIENCE, JWT_ISSUER, PRODUCER, GatewaySettings

MAX_BODY_BYTES = 2 * 1024 * 1024
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
# The builder's client routes; each answers index.html. Listed one by one rather than a catch-all,
# so /api, /hooks, /docs, /healthz, /readyz and /metrics keep their own 404s and 405s.
WEB_ROUTES = ("/", "/signin", "/workflows", "/workflows/{rest:path}", "/runs/{rest:path}")


class MissingSetting(RuntimeError):
    pass


def build(settings: GatewaySettings) -> FastAPI:
    if settings.jwt_secret is None:
        raise MissingSetting("MILLRACE_JWT_SECRET is not set: the gateway cannot sign access tokens")
    registry = CollectorRegistry()
    broker = create_broker(settings)
    engine = create_engine(settings)
    relay = OutboxRelay(engine, broker, PRODUCER)
    namespace = Namespace(settings.namespace)
    feed = RunEventFeed(
        engine,
        settings.kafka_bootstrap,
        namespace.topic(RUNS_EVENTS),
        FeedMetrics(registry),
        client_id=f"millrace-{settings.service_name}-live",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        inbox_size=settings.live_inbox_size,
    )
    background = (relay.run, feed.run, on_stop_signal(feed.close_streams))
    parts = ServiceParts(settings, broker, engine, registry, background=background)
    app = create_app(parts, title="Millrace API")
    passwords = Passwords()
    tokens = Tokens(
        settings.jwt_secret.get_secret_value(),
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
        ttl=timedelta(seconds=settings.jwt_ttl_seconds),
    )
    box = SecretBox(settings.encryption_key)
    outbox = Outbox(namespace, relay)
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = tokens
    app.state.secret_box = box
    app.state.relay = relay
    app.state.namespace = namespace
    app.state.feed = feed
    app.state.accounts = Accounts(engine, passwords, tokens)
    app.state.tenant_settings = TenantSettings(engine, box)
    app.state.workflows = Workflows(engine, outbox)
    app.state.pipelines = Pipelines(engine)
    app.state.records = Records(engine, outbox)
    app.state.runs = Runs(engine, outbox)
    app.state.tasks = Tasks(engine)
    errors.install(app, max_body_bytes=MAX_BODY_BYTES, webhook_body_bytes=webhooks.MAX_WEBHOOK_BODY_BYTES)
    for module in (auth, workflows, runs, live, records, tenant_settings, catalog, tasks):
        app.include_router(module.router)
    app.include_router(webhooks.build_router())
    metrics.mount(app, registry, settings, engine)

    _serve_web(app, WEB_DIST)
    return app


def _serve_web(app: FastAPI, dist: Path) -> None:
    """The builder (services/gateway/web, built to dist/) at ``/``; without a build, ``/`` shows the
    API docs."""
    index = dist / "index.html"
    if not index.is_file():

        @app.get("/", include_in_schema=False)
        async def home() -> RedirectResponse:
            return RedirectResponse("/docs")

        return
    app.mount("/assets", StaticFiles(directory=dist / "assets"), name="web-assets")

    async def page() -> FileResponse:
        return FileResponse(index, headers={"cache-control": "no-cache"})

    for route in WEB_ROUTES:
        app.add_api_route(route, page, methods=["GET"], include_in_schema=False)
