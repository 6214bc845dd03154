"""Dead letters: list (filtered, paged), one with its original message, replay, discard. Admins only;
a tenant's admins see the letters whose message names their tenant, a platform operator (an admin
of ``MILLRACE_OPERATOR_TENANT``) sees every one."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from millrace_common.contracts.messages.envelope import DeadLetterCause, TenantId
from millrace_common.platform.problems import declared
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import Row

from millrace_gateway.adapters.security import Principal
from millrace_gateway.domain.dead_letters import DeadLetterState, preview, visible_tenant
from millrace_gateway.entrypoints.http.deps import DeadLettersDep, SettingsDep, TenantAdmin
from millrace_gateway.service_layer.dead_letters import Filters

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

SourceTopic = Literal[
    "records.events",
    "records.ingress",
    "kafka.granted",
    "runs.commands",
    "runs.events",
    "runs.approvals",
    "nodes.results",
    "nodes.ready.ai",
    "nodes.ready.http",
    "nodes.ready.record",
    "nodes.ready.other",
    "nodes.ready.code",
    "nodes.test_results",
]
"""The registered topics that have a dead-letter topic (``contracts.topics``; a unit test holds the
two together)."""


class DeadLetterSummary(BaseModel):
    id: int
    topic: str = Field(description="The original topic (the registry's name, without namespace)")
    tenant_id: str | None = Field(
        description="The tenant the original message names; null when it names none"
    )
    state: DeadLetterState
    cause: str = Field(description="undecodable, failed, rejected or kafka_refused")
    reason: str
    error_type: str | None
    attempts: int
    consumer_group: str
    source_partition: int = Field(description="Where the original message was: -1 for an outbox row")
    source_offset: int
    dlq_partition: int
    dlq_offset: int
    key: str | None
    value_truncated: bool = Field(
        description="Only the beginning of the original message was kept: not replayable"
    )
    dead_lettered_at: datetime
    replay_requested_at: datetime | None
    replayed_at: datetime | None
    replayed_by: str | None
    discarded_at: datetime | None
    discarded_by: str | None


class DeadLetterOut(DeadLetterSummary):
    headers: dict[str, str]
    trace: str | None
    value_kind: Literal["json", "text", "binary"] = Field(description="How the original bytes read")
    value: JsonValue = Field(description="The original message: parsed JSON, text, or null for binary")
    value_base64: str = Field(description="The original bytes, exactly")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterSummary]
    next_offset: int | None


def _summary(row: Row) -> DeadLetterSummary:
    return DeadLetterSummary.model_validate(row, from_attributes=True)


def _full(row: Row) -> DeadLetterOut:
    kind, value = preview(bytes(row.value))
    return DeadLetterOut(
        **_summary(row).model_dump(),
        headers=row.headers,
        trace=row.trace,
        value_kind=kind,  # type: ignore[arg-type]
        value=value,  # type: ignore[arg-type]
        value_base64=base64.b64encode(bytes(row.value)).decode(),
    )


def _scope(admin: Principal, settings: SettingsDep) -> str | None:
    return visible_tenant(admin.tenant_id, settings.operator_tenant)


def _by(admin: Principal) -> str:
    return f"{admin.kind}:{admin.subject}@{admin.tenant_id}"


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    admin: TenantAdmin,
    settings: SettingsDep,
    desk: DeadLettersDep,
    topic: SourceTopic | None = None,
    tenant: TenantId | None = None,
    cause: DeadLetterCause | None = None,
    reason: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of the reason")
    ] = None,
    state: DeadLetterState | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLetterPage:
    """Dead letters the caller may see, newest first."""
    filters = Filters(topic, tenant, cause, reason, state, since, until)
    page = await desk.page(_scope(admin, settings), filters, limit=limit, offset=offset)
    return DeadLetterPage(items=[_summary(row) for row in page.items], next_offset=page.next_offset)


@router.get("/{letter_id}", response_model=DeadLetterOut)
async def get_dead_letter(
    letter_id: int, admin: TenantAdmin, settings: SettingsDep, desk: DeadLettersDep
) -> DeadLetterOut:
    """One dead letter with its original message (decoded when it is JSON or text) and headers."""
    return _full(await desk.get(_scope(admin, settings), letter_id))


@router.post(
    "/{letter_id}/replay",
    response_model=DeadLetterOut,
    responses=declared(
        conflict="replayed already (already_replayed), discarded (wrong_state), or only partly kept "
        "(not_replayable)"
    ),
)
async def replay_dead_letter(
    letter_id: int, admin: TenantAdmin, settings: SettingsDep, desk: DeadLettersDep
) -> DeadLetterOut:
    """Send the original message (bytes, key, headers) back to its original topic, once: a second
    replay is refused. The answer's state is ``replayed``, or ``replaying`` while Kafka is away."""
    return _full(await desk.replay(_scope(admin, settings), letter_id, by=_by(admin)))


@router.post(
    "/{letter_id}/discard",
    response_model=DeadLetterOut,
    responses=declared(conflict="replayed already (already_replayed) or discarded (wrong_state)"),
)
async def discard_dead_letter(
    letter_id: int, admin: TenantAdmin, settings: SettingsDep, desk: DeadLettersDep
) -> DeadLetterOut:
    """Set a pending dead letter aside: it stays in the index, no longer pending."""
    return _full(await desk.discard(_scope(admin, settings), letter_id, by=_by(admin)))
