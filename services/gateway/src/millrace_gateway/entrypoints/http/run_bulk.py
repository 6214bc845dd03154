"""Bulk retry and cancel of runs: count and confirm with a token, then act."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, model_validator

from millrace_gateway.domain.bulk import RunSelection
from millrace_gateway.entrypoints.http.deps import BulkRunsDep, RunOperator
from millrace_gateway.entrypoints.http.runs import RunStatus

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


class RunFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow_id: UUID | None = None
    status: RunStatus | None = None
    started_after: datetime | None = Field(default=None, description="Runs started at or after this")
    started_before: datetime | None = Field(default=None, description="Runs started before this")
    trigger_kind: str | None = Field(
        default=None, max_length=32, description="Runs of this trigger kind (manual, webhook, record, ...)"
    )
    q: str | None = Field(
        default=None, min_length=1, max_length=200, description="Runs whose trigger data contains this text"
    )


class BulkBody(BaseModel):
    """Without ``token``: a ``filter`` or ``run_ids`` to count. With ``token`` (and the same action):
    act on the runs it confirmed."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "cancel"]
    filter: RunFilter | None = None
    run_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=10_000)
    token: str | None = Field(default=None, min_length=1, max_length=1_000_000)

    @model_validator(mode="after")
    def _one_way_to_select(self) -> BulkBody:
        if self.token is not None and (self.filter is not None or self.run_ids is not None):
            raise ValueError("with a token, send only the action: the token carries the selection")
        if self.token is None and (self.filter is None) == (self.run_ids is None):
            raise ValueError("send exactly one of filter and run_ids (or a token from a first call)")
        return self

    def selection(self) -> RunSelection:
        if self.run_ids is not None:
            return RunSelection(run_ids=tuple(dict.fromkeys(self.run_ids)))
        chosen = self.filter or RunFilter()
        return RunSelection(
            workflow_id=chosen.workflow_id,
            status=chosen.status,
            started_after=chosen.started_after,
            started_before=chosen.started_before,
            trigger_kind=chosen.trigger_kind,
            text=chosen.q,
        )


class BulkCount(BaseModel):
    count: int = Field(description="How many of the tenant's runs the selection matches now")
    token: str = Field(description="Send it back (with the same action) to act on these runs")
    expires_at: datetime


class BulkRunOutcome(BaseModel):
    run_id: UUID
    outcome: Literal["retried", "cancelled", "skipped"]
    reason: str | None = Field(default=None, description="Why a run was skipped")


class BulkResults(BaseModel):
    results: list[BulkRunOutcome]


@router.post(
    "/bulk",
    response_model=BulkCount | BulkResults,
    responses=declared(
        conflict="stale_selection: the selection matches another count than the token confirmed "
        "(``count`` is the new one)",
    ),
)
async def bulk_runs(body: BulkBody, operator: RunOperator, bulk: BulkRunsDep) -> BulkCount | BulkResults:
    """Retry or cancel many runs: the first call (no token) answers how many runs match and a token
    bound to the tenant, action, selection and count; the second (the token) acts on them only if the
    selection still matches that count, and reports per run what it did."""
    if body.token is None:
        counted = await bulk.count(operator.tenant_id, body.action, body.selection())
        return BulkCount(count=counted.count, token=counted.token, expires_at=counted.expires_at)
    outcomes = await bulk.operate(
        operator.tenant_id, body.action, body.token, requested_by=str(operator.subject)
    )
    return BulkResults(
        results=[BulkRunOutcome(run_id=o.run_id, outcome=o.outcome, reason=o.reason) for o in outcomes]
    )
