"""What every service process has: ``/healthz`` (liveness: the process answers), ``/readyz``
(readiness: Kafka and PostgreSQL are reachable and its Kafka consumers do their work), ``/metrics``, a
lifespan that starts and stops its Kafka broker and database engine, and a clean exit on SIGTERM
(uvicorn's)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_common.platform.consumer_watch import ConsumerWatch, Membership
from millrace_common.platform.db import database_reachable
from millrace_common.platform.kafka import check_message_limit
from millrace_common.platform.logs import configure_logging
from millrace_common.platform.problems import (
    PROBLEM_MEDIA_TYPE,
    install_problem_handlers,
    problem_body,
    problem_openapi,
)
from millrace_common.platform.readiness import Hysteresis
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Awaitable[None]]


@dataclass
class ServiceParts:
    """The wired pieces a service process runs: built by its bootstrap, run by :func:`create_app`."""

    settings: ServiceSettings
    broker: KafkaBroker
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


def create_app(parts: ServiceParts, *, title: str) -> FastAPI:
    """A FastAPI app with the three operational endpoints; the broker runs for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for check in parts.start_checks:
            await check()
        await check_message_limit(parts.settings)
        await parts.broker.start()
        watch = watching["consumers"] = ConsumerWatch(parts.settings, parts.consumers)
        background = (*parts.background, watch.run) if parts.consumers else parts.background
        tasks = [
            asyncio.create_task(run_forever(job), name=getattr(job, "__name__", "job")) for job in background
        ]
        log.info("service started", extra={"ids": {"port": parts.settings.http_port}})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await parts.broker.stop()
            for close in parts.closers:
                await close()
            await parts.engine.dispose()
            log.info("service stopped")

    watching: dict[str, ConsumerWatch] = {}
    app = FastAPI(title=title, lifespan=lifespan)
    install_problem_handlers(app)
    problem_openapi(app, body_limit=False)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process runs and answers. Never fails for a dependency or a consumer."""
        return {"status": "ok", "service": parts.settings.service_name}

    # Reported with hysteresis (millrace_common.platform.readiness), so a broker that is back but still
    # settling does not make readiness flap between 200 and 503.
    reported = {"kafka": Hysteresis(), "postgresql": Hysteresis()}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> Response:
        """Readiness: 200 while Kafka and PostgreSQL are reachable and every Kafka consumer holds an
        assignment and makes progress; otherwise 503, a problem whose ``reasons`` say what fails."""
        watch = watching.get("consumers")
        stalled = watch.reasons() if watch is not None else []
        checks = {
            "kafka": reported["kafka"].observe(await _kafka_ready(parts.broker)),
            "postgresql": reported["postgresql"].observe(await _database_ready(parts.engine)),
            "consumers": not stalled,
        }
        if all(checks.values()):
            return JSONResponse({"ready": True, "checks": checks})
        reasons = [f"{name} is unreachable" for name in ("kafka", "postgresql") if not checks[name]]
        reasons += stalled
        body = problem_body(503, "not_ready", "; ".join(reasons), instance="/readyz")
        return JSONResponse(
            {**body, "ready": False, "checks": checks, "reasons": reasons},
            status_code=503,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={"Retry-After": str(max(1, round(parts.settings.readiness_sample_seconds)))},
        )

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(parts.registry), media_type=CONTENT_TYPE_LATEST)

    return app


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


async def _kafka_ready(broker: KafkaBroker) -> bool:
    try:
        return bool(await broker.ping(timeout=2.0))
    except Exception:
        return False


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
    longer scans it. Collecting the young generation every 50,000 allocations instead of 700 cut the
    orchestrator's collector time per run from about 85 to 15 us, and keeps full collections (which
    scan every live object, a big run's state included) rare."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the app until SIGTERM or SIGINT; uvicorn drains requests and runs the lifespan's shutdown."""
    configure_logging(settings.service_name, settings.log_level)
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
