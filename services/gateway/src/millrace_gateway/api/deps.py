"""Request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_common.messages.envelope import TenantId
from millrace_common.outbox import OutboxRelay
from millrace_common.topics import Namespace


def _tenant(x_tenant_id: Annotated[TenantId, Header(description="The calling tenant")]) -> str:
    return x_tenant_id


def _engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


def _relay(request: Request) -> OutboxRelay:
    return request.app.state.relay


def _namespace(request: Request) -> Namespace:
    return request.app.state.namespace


TenantDep = Annotated[str, Depends(_tenant)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
RelayDep = Annotated[OutboxRelay, Depends(_relay)]
NamespaceDep = Annotated[Namespace, Depends(_namespace)]
