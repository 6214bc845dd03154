"""The gateway's metrics: webhook calls by outcome, and its outbox gauges.

:func:`mount` is the gateway bootstrap's one call: it counts ``/hooks/`` answers by status (an ASGI
middleware, so refusals made before the handler runs, such as a malformed token, count too) and
runs the gauge collection for the app's lifetime.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from millrace_common.gauges import GaugeCollection, OutboxCollector
from millrace_common.metrics import PlatformGauges
from millrace_common.service import run_forever
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from millrace_gateway.settings import PRODUCER, GatewaySettings

WEBHOOK_PATH = "/hooks/"
WEBHOOK_OUTCOMES = {
    200: "accepted",
    202: "accepted",
    400: "invalid",
    401: "unauthorized",
    404: "not_found",
    409: "not_active",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


def webhook_outcome(status: int) -> str:
    """The bounded outcome label of a webhook answer's status code."""
    return WEBHOOK_OUTCOMES.get(status, "error" if status >= 500 else "other")


class WebhookOutcomes:
    """ASGI middleware counting the answers to ``POST /hooks/...``."""

    def __init__(self, app: ASGIApp, requests: Counter) -> None:
        self._app = app
        self._requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(WEBHOOK_PATH):
            await self._app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            self._requests.labels(outcome=webhook_outcome(status)).inc()


def mount(app: FastAPI, registry: CollectorRegistry, settings: GatewaySettings, engine: AsyncEngine) -> None:
    """Count webhook calls on ``registry`` and keep the gateway's outbox gauges fresh while ``app`` runs."""
    requests = Counter(
        "millrace_webhook_requests_total",
        "Calls to the webhook receiver, by outcome (accepted, invalid, unauthorized, not_found, not_active, "
        "too_large, unsupported_media_type, unavailable, error, other)",
        ["outcome"],
        registry=registry,
    )
    app.add_middleware(WebhookOutcomes, requests=requests)
    platform = PlatformGauges(registry)
    gauges = GaugeCollection(
        [OutboxCollector(engine, PRODUCER, platform)],
        platform,
        interval_seconds=settings.metrics_interval_seconds,
    )
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[Any]:
        async with served(running) as state:
            task = asyncio.create_task(run_forever(gauges.run), name="gateway-gauges")
            try:
                yield state
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    app.router.lifespan_context = lifespan
