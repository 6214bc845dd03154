"""The gateway's own metrics: webhook calls by outcome (counted by an ASGI middleware, so refusals made
before the handler runs, such as a malformed token or a body over the limit, count too) and the live
streams. Its outbox gauges are the platform's (``millrace_common.platform.gauges``); ``bootstrap``
wires them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from millrace_common.platform.gauges import Collector
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def webhook_requests(registry: CollectorRegistry) -> Counter:
    return Counter(
        "millrace_webhook_requests_total",
        "Calls to the webhook receiver, by outcome (accepted, invalid, unauthorized, not_found, not_active, "
        "too_large, unsupported_media_type, unavailable, error, other)",
        ["outcome"],
        registry=registry,
    )


class FeedMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.streams = Gauge(
            "millrace_live_streams",
            "Open live event streams, by what they follow",
            ["follows"],
            registry=registry,
        )
        self.events = Counter(
            "millrace_live_events_total",
            "Run events parsed for live streams (only those of runs or workflows a stream follows)",
            registry=registry,
        )
        self.unreadable = Counter(
            "millrace_live_unreadable_events_total",
            "Messages on runs.events the live feed could not read",
            registry=registry,
        )
        self.reading = Gauge(
            "millrace_live_feed_reading",
            "1 while the live feed reads run events; 0 while it is paused: from the start until the first "
            "stream, and once no stream has been open for MILLRACE_LIVE_FEED_PAUSE_SECONDS",
            registry=registry,
        )
        self.overflows = Counter(
            "millrace_live_overflows_total",
            "Times a live stream fell so far behind that it had to catch up from the run log (or end)",
            registry=registry,
        )


class PendingDeadLetters(Collector):
    """``millrace_dead_letters_pending``: dead letters nobody has replayed or discarded yet, by source
    topic and reason, read from the gateway's index (a pair that empties reads 0, not stale)."""

    name = "dead_letters"

    def __init__(
        self, registry: CollectorRegistry, counts: Callable[[], Awaitable[list[tuple[str, str, int]]]]
    ) -> None:
        self._counts = counts
        self._seen: set[tuple[str, str]] = set()
        self.pending = Gauge(
            "millrace_dead_letters_pending",
            "Dead letters waiting for an operator (not replayed or discarded), by source topic and reason",
            ["topic", "reason"],
            registry=registry,
        )

    async def collect(self) -> None:
        counts = {(topic, cause): count for topic, cause, count in await self._counts()}
        for key in self._seen - counts.keys():
            self.pending.labels(topic=key[0], reason=key[1]).set(0)
        for (topic, cause), count in counts.items():
            self.pending.labels(topic=topic, reason=cause).set(count)
        self._seen |= counts.keys()
