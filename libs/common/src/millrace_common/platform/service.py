"""What every service process has: ``/healthz`` (liveness: the process answers), ``/readyz``
(readiness: Kafka and PostgreSQL are reachable and its Kafka consumers do their work), ``/metrics``, a
lifespan that starts and stops its Kafka producer and database engine, and a clean exit on SIGTERM
(uvicorn's).

A service with an API of its own (the gateway, the approval service) serves these from its FastAPI
app (``platform.api_app.create_app``). The others answer nothing else over HTTP, so they run
:func:`operations_app`, a plain Starlette app: FastAPI is not imported into them (its models and
OpenAPI machinery cost each process about 5 MB of resident memory for three fixed GET routes)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from millrace_common.platform.consumer_watch import ConsumerWatch, Membership
from millrace_common.platform.db import database_reachable
from millrace_common.platform.kafka import check_message_limit
from millrace_common.platform.logs import configure_logging
from millrace_common.platform.memory import trimming_loop
from millrace_common.platform.metrics import CollectorPauses
from millrace_common.platform.outbox_vacuum import vacuuming_loop
from millrace_common.platform.problem_format import PROBLEM_MEDIA_TYPE, STATUS_CODES, problem_body, title
from millrace_common.platform.producer import Producer
from millrace_common.platform.readiness import Hysteresis
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Awaitable[None]]


@dataclass
class ServiceParts:
    """The wired pieces a service process runs: built by its bootstrap, run by :func:`create_app`."""

    settings: ServiceSettings
    producer: Producer
    engine: AsyncEngine
    registry: CollectorRegistry
    background: Sequence[BackgroundTask] = field(default_factory=tuple)
    closers: Sequence[BackgroundTask] = field(default_factory=tuple)
    start_checks: Sequence[BackgroundTask] = field(default_factory=tuple)
    """Run first at start, before Kafka and the background tasks: one that raises stops the process
    (a database without a migration the service needs, say), rather than let it run half-able."""
    consumers: Sequence[Membership] = field(default_factory=tuple)
    """The memberships of the service's Kafka consumers: ``/readyz`` fails while one holds no
    assignment or makes no progress (``millrace_common.platform.consumer_watch``)."""


@dataclass(frozen=True)
class Answer:
    """An operational endpoint's answer, independent of the web framework that sends it."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


class Operations:
    """The process's life (start checks, producer, background tasks, clean stop) and its three
    operational answers, shared by the bare ASGI app and the FastAPI one."""

    def __init__(self, parts: ServiceParts) -> None:
        self.parts = parts
        self._watch: ConsumerWatch | None = None
        # Reported with hysteresis (millrace_common.platform.readiness), so a broker that is back but
        # still settling does not make readiness flap between 200 and 503.
        self._reported = {"kafka": Hysteresis(), "postgresql": Hysteresis()}
        self._collector_pauses = CollectorPauses(parts.registry)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        parts = self.parts
        for check in parts.start_checks:
            await check()
        await check_message_limit(parts.settings)
        await parts.producer.start()
        self._watch = ConsumerWatch(parts.settings, parts.consumers)
        background = (*parts.background, self._watch.run) if parts.consumers else tuple(parts.background)
        housekeeping = (trimming_loop(parts.settings.memory_trim_seconds), vacuuming_loop(parts.settings))
        background = (*background, *(job for job in housekeeping if job is not None))
        tasks = [
            asyncio.create_task(run_forever(job), name=getattr(job, "__name__", "job")) for job in background
        ]
        log.info("service started", extra={"ids": {"port": parts.settings.http_port}})
        try:
            with self._collector_pauses.observing():
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await parts.producer.stop()
            for close in parts.closers:
                await close()
            await parts.engine.dispose()
            log.info("service stopped")

    def health(self) -> dict[str, str]:
        return {"status": "ok", "service": self.parts.settings.service_name}

    async def readiness(self) -> Answer:
        """200 while Kafka and PostgreSQL are reachable and every Kafka consumer holds an assignment
        and makes progress; otherwise 503, a problem whose ``reasons`` say what fails."""
        stalled = self._watch.reasons() if self._watch is not None else []
        checks = {
            "kafka": self._reported["kafka"].observe(await self.parts.producer.ping(timeout=2.0)),
            "postgresql": self._reported["postgresql"].observe(await _database_ready(self.parts.engine)),
            "consumers": not stalled,
        }
        if all(checks.values()):
            return Answer(200, _json({"ready": True, "checks": checks}), "application/json")
        reasons = [f"{name} is unreachable" for name in ("kafka", "postgresql") if not checks[name]]
        reasons += stalled
        body = problem_body(503, "not_ready", "; ".join(reasons), instance="/readyz")
        return Answer(
            503,
            _json({**body, "ready": False, "checks": checks, "reasons": reasons}),
            PROBLEM_MEDIA_TYPE,
            {"Retry-After": str(max(1, round(self.parts.settings.readiness_sample_seconds)))},
        )

    def metrics(self) -> Answer:
        return Answer(200, generate_latest(self.parts.registry), CONTENT_TYPE_LATEST)


def operations_app(parts: ServiceParts) -> Starlette:
    """A Starlette app with only ``/healthz``, ``/readyz`` and ``/metrics``, for a service with no API
    of its own; any other path or method is a 404 or 405 problem. Its lifespan runs the service."""
    operations = Operations(parts)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with operations.running():
            yield

    async def healthz(_: Request) -> Response:
        return JSONResponse(operations.health())

    async def readyz(_: Request) -> Response:
        return _response(await operations.readiness())

    async def metrics(_: Request) -> Response:
        return _response(operations.metrics())

    async def problem(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        code = STATUS_CODES.get(status, "error")
        body = problem_body(
            status, code, f"{request.method} {request.url.path}: {title(status)}", instance=request.url.path
        )
        headers = dict(error.headers or {}) if isinstance(error, HTTPException) else {}
        return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
        exception_handlers={HTTPException: problem},
        lifespan=lifespan,
    )


def _response(answer: Answer) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers
    )


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def run_forever(job: BackgroundTask) -> None:
    """Run a background loop; an unexpected error is logged and the loop restarted after a pause."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "background job failed; restarting it", extra={"ids": {"job": getattr(job, "__name__", "")}}
            )
            await asyncio.sleep(1)


async def _database_ready(engine: AsyncEngine) -> bool:
    try:
        return await asyncio.wait_for(database_reachable(engine), timeout=2.0)
    except Exception:
        return False


def _exit_cleanly(signum: int, _frame: object) -> None:
    log.info("stopped by signal", extra={"ids": {"signal": signal.Signals(signum).name}})
    sys.exit(0)


def tune_garbage_collector() -> None:
    """What start-up built (modules, the app) lives as long as the process: frozen, the collector no
    longer scans it. The young generation is collected every 10,000 allocations, not 700: that cut the
    orchestrator's collector time per run from about 85 us to 14. At 50,000 (before 2026-12-05) each
    young collection stopped the orchestrator for 24 ms, every second or so at 520 runs/s, and
    every run in flight waited it out; at 10,000 each takes 3.3 ms and their total is no larger
    (``millrace_gc_pause_seconds``). The older generations keep their pace (every million allocations,
    a full collection, which scans every live object, every hundred of those)."""
    gc.freeze()
    gc.set_threshold(10_000, 100, 100)


def serve(app: Starlette, settings: ServiceSettings) -> None:
    """Run the app until SIGTERM or SIGINT; uvicorn drains requests and runs the lifespan's shutdown."""
    configure_logging(
        settings.service_name,
        settings.log_level,
        file=settings.log_file,
        max_bytes=settings.log_file_max_mb << 20,
        backups=settings.log_file_backups,
    )
    tune_garbage_collector()
    # uvicorn re-raises the stop signal once it has shut down; after a clean shutdown that is exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
