"""No route of the gateway or the approval service runs a plain ``def`` dependency or endpoint.

FastAPI runs those in its thread pool: a hand-off to a worker thread and back for each, on every
request. None of ours blocks, so each is ``async def`` and runs on the event loop
(``platform/http_deps.py`` says why). The apps are built, not started: nothing is connected to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from millrace_common.platform.http_deps import app_state, permissions
from millrace_common.platform.permissions import Permission
from millrace_common.platform.secrets import new_key
from pydantic import SecretStr

PLACEHOLDER = SecretStr("unit-test-only-nothing-is-signed-with-this")


def _gateway() -> FastAPI:
    from millrace_gateway.bootstrap import build
    from millrace_gateway.settings import GatewaySettings

    return build(GatewaySettings(jwt_secret=PLACEHOLDER, encryption_key=new_key()))


def _approval() -> FastAPI:
    from millrace_approval.bootstrap import build
    from millrace_approval.settings import ApprovalSettings

    return build(ApprovalSettings(jwt_secret=PLACEHOLDER))


def _runs_on_loop(call: Callable[..., Any]) -> bool:
    """What FastAPI awaits in place rather than sending to its thread pool."""
    target = call if inspect.isroutine(call) else getattr(call, "__call__", call)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _routes(routes: Iterable[Any]) -> Iterator[tuple[APIRoute, list[Dependant]]]:
    """Each API route with the dependencies it runs, its routers' own included (a router included
    into another keeps its routes behind an ``original_router`` in this FastAPI)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, list(_dependants(route.dependant))
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            # Where an included router keeps its own dependencies: a FastAPI that moved them must
            # fail here rather than let the walk miss them.
            assert context is not None and hasattr(context, "dependencies"), type(route)
            shared = [get_dependant(path="", call=d.dependency) for d in context.dependencies]
            extra = [d for top in shared for d in (top, *_dependants(top))]
            for inner_route, deps in _routes(inner.routes):
                yield inner_route, [*extra, *deps]


def _name(call: Callable[..., Any]) -> str:
    return f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', repr(call))}"


@pytest.mark.parametrize(("build", "at_least"), [(_gateway, 100), (_approval, 10)])
def test_every_dependency_and_endpoint_runs_on_the_event_loop(
    build: Callable[[], FastAPI], at_least: int
) -> None:
    routes = list(_routes(build().routes))
    # A walk that finds few routes proves nothing: the apps have far more than this.
    assert len(routes) >= at_least
    in_thread_pool = sorted(
        {
            f"{','.join(sorted(route.methods))} {route.path}: {_name(call)}"
            for route, deps in routes
            for call in (route.endpoint, *(d.call for d in deps if d.call is not None))
            if not _runs_on_loop(call)
        }
    )
    assert in_thread_pool == []


def test_the_check_tells_a_plain_function_from_a_coroutine() -> None:
    """The check above is not vacuous: a plain ``def`` is what it reports."""

    def plain() -> None:
        return None

    async def awaited() -> None:
        return None

    assert not _runs_on_loop(plain)
    assert _runs_on_loop(awaited)
    assert _runs_on_loop(app_state("settings"))

    async def caller() -> Any:
        return None

    assert _runs_on_loop(permissions(caller)(Permission.OPERATE_RUNS))
