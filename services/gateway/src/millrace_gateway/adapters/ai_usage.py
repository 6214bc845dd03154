"""The tenant's AI token usage as the node runner records it (``ai_token_months``, the budget's
running total, and ``ai_token_usage``, one row per call), read for the AI settings page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from millrace_common.platform.tables import ai_token_months, ai_token_usage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class MonthUsage:
    month: date
    tokens: int
    calls: int


async def month_usage(connection: AsyncConnection, tenant_id: str, month: date) -> MonthUsage:
    """Tokens counted against the month's budget, and the calls made since the month began (UTC)."""
    tokens = (
        await connection.execute(
            select(ai_token_months.c.total_tokens).where(
                ai_token_months.c.tenant_id == tenant_id, ai_token_months.c.month == month
            )
        )
    ).scalar_one_or_none()
    since = datetime.combine(month, time(), tzinfo=UTC)
    calls = (
        await connection.execute(
            select(func.count()).where(
                ai_token_usage.c.tenant_id == tenant_id, ai_token_usage.c.recorded_at >= since
            )
        )
    ).scalar_one()
    return MonthUsage(month=month, tokens=int(tokens or 0), calls=int(calls))
