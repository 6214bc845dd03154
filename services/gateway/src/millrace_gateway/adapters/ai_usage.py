"""The tenant's AI token usage as the node runner records it (``ai_token_months``, the budget's
running total, and ``ai_token_usage``, one row per call), read for the AI settings page and the usage
report, priced with the tenant's ``model_prices`` (``tenant_ai_settings``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from millrace_common.platform.tables import ai_token_months, ai_token_usage, tenant_ai_settings, workflows
from sqlalchemy import ColumnElement, Numeric, Text, case, cast, func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.ai_usage import Dimension, UsageRow


@dataclass(frozen=True)
class MonthUsage:
    month: date
    tokens: int
    calls: int


async def month_usage(connection: AsyncConnection, tenant_id: str, month: date) -> MonthUsage:
    """Tokens counted against the month's budget, and the calls made since the month began (UTC)."""
    since = datetime.combine(month, time(), tzinfo=UTC)
    calls = (
        await connection.execute(
            select(func.count()).where(
                ai_token_usage.c.tenant_id == tenant_id, ai_token_usage.c.recorded_at >= since
            )
        )
    ).scalar_one()
    return MonthUsage(month=month, tokens=await budget_used(connection, tenant_id, month), calls=int(calls))


async def budget_used(connection: AsyncConnection, tenant_id: str, month: date) -> int:
    """The tokens the month's budget has counted (the runner's running total, not a sum of rows, so it
    is what the budget check sees even after old rows were pruned)."""
    tokens = (
        await connection.execute(
            select(ai_token_months.c.total_tokens).where(
                ai_token_months.c.tenant_id == tenant_id, ai_token_months.c.month == month
            )
        )
    ).scalar_one_or_none()
    return int(tokens or 0)


async def usage_rows(
    connection: AsyncConnection,
    tenant_id: str,
    since: date,
    until: date,
    grouping: Sequence[Dimension],
    *,
    limit: int,
) -> list[UsageRow]:
    """The tenant's calls recorded in [since, until) (UTC days), grouped by ``grouping`` (none: one row
    for them all, no row without calls), the most tokens first, at most ``limit`` rows."""
    usage = ai_token_usage
    # A node inside a for_each records its instance key (``enrich[3]``) and an agent's turn may carry
    # its step (``agent#m2``): both count for the node the workflow's definition names.
    node = func.split_part(func.split_part(usage.c.node_id, "#", 1), "[", 1)
    prices = tenant_ai_settings.c.model_prices

    def price(kind: str) -> ColumnElement:
        return cast(func.jsonb_extract_path_text(prices, usage.c.model, kind), Numeric)

    # Null for a model without a price, and sum() passes nulls over: a group's cost is that of its
    # priced calls, and null when none is priced.
    call_cost = (
        usage.c.prompt_tokens * price("prompt_per_million")
        + usage.c.completion_tokens * price("completion_per_million")
    ) / Decimal(1_000_000)
    unpriced = case((func.jsonb_extract_path(prices, usage.c.model).is_(None), usage.c.total_tokens), else_=0)
    keys: dict[Dimension, list[ColumnElement]] = {
        Dimension.WORKFLOW: [usage.c.workflow_id, workflows.c.name],
        Dimension.NODE: [node],
        Dimension.MODEL: [usage.c.model],
    }
    grouped = [column for dimension in grouping for column in keys[dimension]]

    def key(dimension: Dimension, at: int, empty: ColumnElement) -> ColumnElement:
        return keys[dimension][at] if dimension in grouping else empty

    total_tokens = func.sum(usage.c.total_tokens)
    query = (
        select(
            key(Dimension.WORKFLOW, 0, cast(null(), usage.c.workflow_id.type)).label("workflow_id"),
            key(Dimension.WORKFLOW, 1, cast(null(), Text)).label("workflow_name"),
            key(Dimension.NODE, 0, cast(null(), Text)).label("node_id"),
            key(Dimension.MODEL, 0, cast(null(), Text)).label("model"),
            func.sum(usage.c.prompt_tokens).label("prompt_tokens"),
            func.sum(usage.c.completion_tokens).label("completion_tokens"),
            total_tokens.label("total_tokens"),
            func.count().label("calls"),
            func.round(func.sum(call_cost), 6).label("cost"),
            func.sum(unpriced).label("unpriced_tokens"),
        )
        .select_from(
            usage.outerjoin(
                tenant_ai_settings, tenant_ai_settings.c.tenant_id == usage.c.tenant_id
            ).outerjoin(
                workflows,
                (workflows.c.id == usage.c.workflow_id) & (workflows.c.tenant_id == usage.c.tenant_id),
            )
        )
        .where(
            usage.c.tenant_id == tenant_id,
            usage.c.recorded_at >= datetime.combine(since, time(), tzinfo=UTC),
            usage.c.recorded_at < datetime.combine(until, time(), tzinfo=UTC),
        )
        .group_by(*grouped)
        .having(func.count() > literal(0))
        .order_by(total_tokens.desc(), *(column.asc().nulls_first() for column in grouped))
        .limit(limit)
    )
    rows = (await connection.execute(query)).all()
    return [
        UsageRow(
            workflow_id=row.workflow_id,
            workflow_name=row.workflow_name,
            node_id=row.node_id,
            model=row.model,
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            total_tokens=int(row.total_tokens),
            calls=int(row.calls),
            cost=row.cost,
            unpriced_tokens=int(row.unpriced_tokens),
        )
        for row in rows
    ]
