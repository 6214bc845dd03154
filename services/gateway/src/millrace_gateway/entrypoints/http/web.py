"""The workflow builder (services/gateway/web, built to dist/) served at ``/``; without a build, ``/``
shows the API docs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

# The builder's client routes; each answers index.html. Listed one by one rather than a catch-all,
# so /api, /hooks, /docs, /healthz, /readyz and /metrics keep their own 404s and 405s.
WEB_ROUTES = (
    "/",
    "/signin",
    "/workflows",
    "/workflows/{rest:path}",
    "/runs",
    "/runs/{rest:path}",
    "/dead-letters",
    "/dead-letters/{rest:path}",
    # the console's pages
    "/pipelines",
    "/pipelines/{rest:path}",
    "/approvals",
    "/approvals/{rest:path}",
    "/tasks",
    "/credentials",
    "/users",
    "/settings/{rest:path}",
    "/notifications",
    "/notifications/{rest:path}",
)


def mount(app: FastAPI, dist: Path) -> None:
    """Serve the build in ``dist`` (its assets, and index.html at each client route)."""
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
