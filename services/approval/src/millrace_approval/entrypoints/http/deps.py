"""Request dependencies: the wired parts, and the caller (bearer token, API key or inbox session)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from millrace_common.platform.auth import InvalidCredentials, Passwords, Principal, Tokens
from millrace_common.platform.callers import authenticate
from millrace_common.platform.permissions import Permission, allows
from millrace_common.platform.problems import Problem
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_approval.service_layer.approvals import Approvals
from millrace_approval.settings import ApprovalSettings

SESSION_COOKIE = "millrace_inbox"

_bearer = HTTPBearer(auto_error=False, description="An access token from the gateway, or an API key")


ApiError = Problem


def _state(name: str) -> Callable[[Request], object]:
    def get(request: Request) -> object:
        return getattr(request.app.state, name)

    return get


EngineDep = Annotated[AsyncEngine, Depends(_state("engine"))]
TokensDep = Annotated[Tokens, Depends(_state("tokens"))]
PasswordsDep = Annotated[Passwords, Depends(_state("passwords"))]
ApprovalsDep = Annotated[Approvals, Depends(_state("approvals"))]
SettingsDep = Annotated[ApprovalSettings, Depends(_state("settings"))]


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message)


async def _principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    tokens: TokensDep,
    engine: EngineDep,
) -> Principal:
    try:
        return await authenticate(
            credentials.scheme if credentials else None,
            credentials.credentials if credentials else None,
            tokens,
            engine,
        )
    except InvalidCredentials as error:
        raise unauthenticated(str(error)) from error


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if not allows(principal.roles, permission):
            raise ApiError(
                403, "forbidden", f"this needs the '{permission.value}' permission, which your roles lack"
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Permission.READ))]


def session_principal(request: Request, tokens: Tokens) -> Principal | None:
    """The inbox session's user, or None when there is no valid session cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return tokens.verify(token)
    except InvalidCredentials:
        return None


def csrf_token(secret: str, session_token: str) -> str:
    """Tied to the session: an attacker's page can neither read the cookie nor compute this."""
    return hmac.new(secret.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, session_token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(secret, session_token), presented)
