"""The FastAPI app of a service with an API of its own (the gateway, the approval service): the
operational endpoints of ``platform.service`` as documented routes, problem details for every error,
and the service's life as the app's lifespan. Its routers are added by the service's bootstrap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from millrace_common.platform.problems import install_problem_handlers, problem_openapi
from millrace_common.platform.service import Answer, Operations, ServiceParts


def create_app(parts: ServiceParts, *, title: str) -> FastAPI:
    """A FastAPI app with the three operational endpoints; the broker runs for the app's lifetime."""
    operations = Operations(parts)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with operations.running():
            yield

    app = FastAPI(title=title, lifespan=lifespan)
    install_problem_handlers(app)
    problem_openapi(app, body_limit=False)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process runs and answers. Never fails for a dependency or a consumer."""
        return operations.health()

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> Response:
        """Readiness: 200 while Kafka and PostgreSQL are reachable and every Kafka consumer holds an
        assignment and makes progress; otherwise 503, a problem whose ``reasons`` say what fails."""
        return _response(await operations.readiness())

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return _response(operations.metrics())

    return app


def _response(answer: Answer) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers
    )
