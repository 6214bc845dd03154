"""What every service that serves people wires into its routes: the parts ``bootstrap`` put on the
app's state, the caller, and the permission a route requires, each refused as problem details (401
``unauthenticated``, 403 ``forbidden``). A service brings only its own way to find the caller.

Every dependency here is ``async def``, though none of them waits for anything: FastAPI runs a plain
``def`` dependency in its thread pool, a hand-off to a worker thread and back for each one of each
request (an eighth of the gateway's event-loop time on the webhook path, for two ``app_state``
lookups). ``tests/unit/test_http_dependencies.py`` holds every route of both apps to it.

No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations when a
route is declared, and ``require`` builds them around the service's caller dependency at run time.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from millrace_common.platform.auth import Principal
from millrace_common.platform.permissions import Permission, allows
from millrace_common.platform.problems import Problem


def app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving what ``bootstrap`` stored as ``app.state.<name>``."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


def bearer(description: str) -> HTTPBearer:
    """The ``Authorization: Bearer`` scheme, read without failing: the caller dependency says why not."""
    return HTTPBearer(auto_error=False, description=description)


def unauthenticated(message: str) -> Problem:
    return Problem(401, "unauthenticated", message)


def forbidden(permission: Permission) -> Problem:
    return Problem(403, "forbidden", f"this needs the '{permission.value}' permission, which your roles lack")


def permissions(
    caller: Callable[..., Awaitable[Principal]],
) -> Callable[[Permission], Callable[..., Awaitable[Principal]]]:
    """``require(permission)`` for a service whose caller dependency is ``caller``: a dependency that
    admits only callers whose roles grant the permission."""
    CallerDep = Annotated[Principal, Depends(caller)]

    def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
        async def check(principal: CallerDep) -> Principal:
            if not allows(principal.roles, permission):
                raise forbidden(permission)
            return principal

        return check

    return require
