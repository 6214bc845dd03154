"""Request dependencies: the wired parts, and the caller (bearer token, API key or inbox session)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from millrace_common.platform.auth import InvalidCredentials, Passwords, Principal, Tokens
from millrace_common.platform.callers import authenticate
from millrace_common.platform.http_deps import app_state, bearer, permissions, unauthenticated
from millrace_common.platform.permissions import Permission
from millrace_common.platform.problems import Problem
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_approval.service_layer.approvals import Approvals
from millrace_approval.settings import ApprovalSettings

SESSION_COOKIE = "millrace_inbox"

_bearer = bearer("An access token from the gateway, or an API key")

ApiError = Problem

EngineDep = Annotated[AsyncEngine, Depends(app_state("engine"))]
TokensDep = Annotated[Tokens, Depends(app_state("tokens"))]
PasswordsDep = Annotated[Passwords, Depends(app_state("passwords"))]
ApprovalsDep = Annotated[Approvals, Depends(app_state("approvals"))]
SettingsDep = Annotated[ApprovalSettings, Depends(app_state("settings"))]


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
require = permissions(_principal)
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
