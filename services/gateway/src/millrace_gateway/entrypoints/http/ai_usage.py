"""The tenant's AI usage by month, workflow, node and model, with its cost and the budget left."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from millrace_gateway.domain.ai_usage import MAX_ROWS, Dimension, UsageRow
from millrace_gateway.entrypoints.http.deps import TenantAdmin, TenantSettingsDep

router = APIRouter(prefix="/api/v1", tags=["AI usage"])


class UsageRowOut(BaseModel):
    workflow_id: UUID | None = Field(
        description="Null when not grouped by workflow, and for calls recorded before calls named their "
        "workflow"
    )
    workflow_name: str | None = Field(description="The workflow's name now; null as workflow_id is")
    node_id: str | None = Field(
        description="The node's id in the workflow's definition (every item of a for_each counts for the "
        "node); null when not grouped by node"
    )
    model: str | None = Field(
        description="The model as the endpoint reported it; null when not grouped by model"
    )
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int
    cost: float | None = Field(
        description="prompt_tokens and completion_tokens priced with the tenant's model_prices, in "
        "currency; only tokens of models with a price count, and it is null when none has one"
    )
    unpriced_tokens: int = Field(description="Tokens of models without a price, which cost leaves out")


class UsageReportOut(BaseModel):
    month: str = Field(description="YYYY-MM, the calendar month (UTC) counted")
    group_by: list[Dimension]
    currency: str = Field(description="The ISO 4217 code the tenant's prices are in (a label)")
    rows: list[UsageRowOut] = Field(description=f"The groups with the most tokens first, at most {MAX_ROWS}")
    truncated: bool = Field(
        description=f"More than {MAX_ROWS} groups: those with the fewest tokens are left out"
    )
    totals: UsageRowOut = Field(description="The whole month (every dimension null)")
    monthly_token_budget: int | None = Field(description="The tenant's budget as set now; null: no budget")
    budget_used: int = Field(description="Tokens the month's budget counted")
    budget_left: int | None = Field(
        description="Tokens the month still allows (never below 0); null: no budget"
    )


@router.get("/ai/usage", response_model=UsageReportOut)
async def get_usage_report(
    admin: TenantAdmin,
    settings: TenantSettingsDep,
    month: Annotated[
        str | None,
        Query(max_length=20, description="YYYY-MM (UTC); this month without one", examples=["2025-03"]),
    ] = None,
    group_by: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Any of workflow, node, model, comma separated; all three without one",
            examples=["workflow,model"],
        ),
    ] = None,
) -> UsageReportOut:
    """The month's AI tokens and calls by workflow, node and model, their cost from the tenant's model
    prices, and what is left of the monthly token budget (admins: the prices and the budget are theirs)."""
    report = await settings.usage_report(admin.tenant_id, month, group_by)
    return UsageReportOut(
        month=f"{report.month:%Y-%m}",
        group_by=list(report.grouping),
        currency=report.currency,
        rows=[_row(row) for row in report.rows],
        truncated=report.truncated,
        totals=_row(report.totals),
        monthly_token_budget=report.monthly_token_budget,
        budget_used=report.budget_used,
        budget_left=report.budget_left,
    )


def _row(row: UsageRow) -> UsageRowOut:
    return UsageRowOut(
        workflow_id=row.workflow_id,
        workflow_name=row.workflow_name,
        node_id=row.node_id,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        calls=row.calls,
        cost=_money(row.cost),
        unpriced_tokens=row.unpriced_tokens,
    )


def _money(amount: Decimal | None) -> float | None:
    return None if amount is None else float(amount)
