"""Request dependencies: the use cases bootstrap built, and the authenticated caller with its permissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials
from millrace_common.platform.http_deps import app_state, bearer, permissions, unauthenticated
from millrace_common.platform.permissions import allows
from millrace_common.platform.problems import Problem

from millrace_gateway.adapters.security import InvalidCredentials, Principal
from millrace_gateway.domain.permissions import Permission
from millrace_gateway.service_layer.accounts import Accounts
from millrace_gateway.service_layer.bulk import BulkRuns
from millrace_gateway.service_layer.dead_letters import DeadLetterDesk
from millrace_gateway.service_layer.live import LiveRuns
from millrace_gateway.service_layer.node_tests import NodeTests
from millrace_gateway.service_layer.notifications import NotificationDesk
from millrace_gateway.service_layer.records import Pipelines, Records
from millrace_gateway.service_layer.runs import Runs
from millrace_gateway.service_layer.tasks import Tasks
from millrace_gateway.service_layer.tenant_settings import TenantSettings
from millrace_gateway.service_layer.topic_grants import TopicGrantDesk
from millrace_gateway.service_layer.webhook_answers import WebhookAnswers
from millrace_gateway.service_layer.webhooks import WebhookReceiver
from millrace_gateway.service_layer.workflows import Workflows
from millrace_gateway.settings import GatewaySettings

_bearer = bearer("An access token from /api/v1/auth/token, or an API key")


SettingsDep = Annotated[GatewaySettings, Depends(app_state("settings"))]
WorkflowsDep = Annotated[Workflows, Depends(app_state("workflows"))]
PipelinesDep = Annotated[Pipelines, Depends(app_state("pipelines"))]
RecordsDep = Annotated[Records, Depends(app_state("records"))]
RunsDep = Annotated[Runs, Depends(app_state("runs"))]
BulkRunsDep = Annotated[BulkRuns, Depends(app_state("bulk_runs"))]
AccountsDep = Annotated[Accounts, Depends(app_state("accounts"))]
TenantSettingsDep = Annotated[TenantSettings, Depends(app_state("tenant_settings"))]
TasksDep = Annotated[Tasks, Depends(app_state("tasks"))]
LiveDep = Annotated[LiveRuns, Depends(app_state("live"))]
WebhooksDep = Annotated[WebhookReceiver, Depends(app_state("webhooks"))]
WebhookAnswersDep = Annotated[WebhookAnswers, Depends(app_state("webhook_answers"))]
DeadLettersDep = Annotated[DeadLetterDesk, Depends(app_state("dead_letters"))]
TopicGrantsDep = Annotated[TopicGrantDesk, Depends(app_state("topic_grants"))]
NodeTestsDep = Annotated[NodeTests, Depends(app_state("node_tests"))]
NotificationsDep = Annotated[NotificationDesk, Depends(app_state("notifications"))]


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


require = permissions(_principal)
"""A dependency that admits only callers whose roles grant the permission."""

Reader = Annotated[Principal, Depends(require(Permission.READ))]
WorkflowEditor = Annotated[Principal, Depends(require(Permission.EDIT_WORKFLOWS))]
RunOperator = Annotated[Principal, Depends(require(Permission.OPERATE_RUNS))]
RecordEditor = Annotated[Principal, Depends(require(Permission.EDIT_RECORDS))]
TenantAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_TENANT))]


async def _run_starter(principal: PrincipalDep) -> Principal:
    """Operators start runs; editors start test runs of the workflows they build."""
    if allows(principal.roles, Permission.OPERATE_RUNS) or allows(principal.roles, Permission.EDIT_WORKFLOWS):
        return principal
    detail = (
        "starting a run needs the 'operate_runs' or the 'edit_workflows' permission, which your roles lack"
    )
    raise Problem(403, "forbidden", detail)


RunStarter = Annotated[Principal, Depends(_run_starter)]
"""Who may start a manual run: admins, operators, and editors (testing what they build)."""
