"""Request dependencies: the use cases bootstrap built, and the authenticated caller with its permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from millrace_gateway.adapters.security import InvalidCredentials, Principal
from millrace_gateway.domain.permissions import Permission, allows
from millrace_gateway.entrypoints.http.errors import ApiError
from millrace_gateway.service_layer.accounts import Accounts
from millrace_gateway.service_layer.live import LiveRuns
from millrace_gateway.service_layer.records import Pipelines, Records
from millrace_gateway.service_layer.runs import Runs
from millrace_gateway.service_layer.tasks import Tasks
from millrace_gateway.service_layer.tenant_settings import TenantSettings
from millrace_gateway.service_layer.webhooks import WebhookReceiver
from millrace_gateway.service_layer.workflows import Workflows
from millrace_gateway.settings import GatewaySettings

_bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/token, or an API key")


def _state(name: str) -> Callable[[Request], object]:
    def get(request: Request) -> object:
        return getattr(request.app.state, name)

    return get


SettingsDep = Annotated[GatewaySettings, Depends(_state("settings"))]
WorkflowsDep = Annotated[Workflows, Depends(_state("workflows"))]
PipelinesDep = Annotated[Pipelines, Depends(_state("pipelines"))]
RecordsDep = Annotated[Records, Depends(_state("records"))]
RunsDep = Annotated[Runs, Depends(_state("runs"))]
AccountsDep = Annotated[Accounts, Depends(_state("accounts"))]
TenantSettingsDep = Annotated[TenantSettings, Depends(_state("tenant_settings"))]
TasksDep = Annotated[Tasks, Depends(_state("tasks"))]
LiveDep = Annotated[LiveRuns, Depends(_state("live"))]
WebhooksDep = Annotated[WebhookReceiver, Depends(_state("webhooks"))]


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message)


async def _principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)], accounts: AccountsDep
) -> Principal:
    try:
        return await accounts.caller(
            credentials.scheme if credentials else None, credentials.credentials if credentials else None
        )
    except InvalidCredentials as error:
        raise unauthenticated(str(error)) from error


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency that admits only callers whose roles grant ``permission``."""

    def check(principal: PrincipalDep) -> Principal:
        if not allows(principal.roles, permission):
            raise ApiError(
                403, "forbidden", f"this needs the '{permission.value}' permission, which your roles lack"
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Permission.READ))]
WorkflowEditor = Annotated[Principal, Depends(require(Permission.EDIT_WORKFLOWS))]
RunOperator = Annotated[Principal, Depends(require(Permission.OPERATE_RUNS))]
RecordEditor = Annotated[Principal, Depends(require(Permission.EDIT_RECORDS))]
TenantAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_TENANT))]
