"""Tenant settings use cases: the AI endpoint the tenant's AI nodes call, and named credentials for its
nodes and webhooks. Secrets are sealed here, before they are stored, and never given back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import uuid4

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.refusals import FieldProblem
from millrace_common.platform.secrets import SecretBox
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import ai_usage, credentials, network_policies, tenant_retention
from millrace_gateway.domain.ai_usage import (
    MAX_ROWS,
    Dimension,
    ModelPrice,
    UsageRow,
    budget_left,
    grouping_asked,
    month_after,
    month_asked,
)
from millrace_gateway.domain.refusals import NotFound, Taken

DEFAULT_CURRENCY = "USD"
NO_USAGE = UsageRow(None, None, None, None, 0, 0, 0, 0, None, 0)


@dataclass(frozen=True)
class AiSettings:
    base_url: str
    model: str
    api_key: str | None
    """None keeps the stored key."""
    temperature: float
    max_tokens: int
    monthly_token_budget: int | None
    allow_private_endpoint: bool
    model_prices: Mapping[str, ModelPrice] | None = None
    """None keeps the stored prices; empty clears them."""
    price_currency: str | None = None
    """None keeps the stored currency."""


@dataclass(frozen=True)
class UsageReport:
    """A month's AI usage grouped as asked, with its cost and what the budget has left."""

    month: date
    grouping: tuple[Dimension, ...]
    currency: str
    rows: list[UsageRow]
    truncated: bool
    """More groups than :data:`MAX_ROWS`; those with the fewest tokens were left out."""
    totals: UsageRow
    monthly_token_budget: int | None
    budget_used: int
    budget_left: int | None


@dataclass(frozen=True)
class Retention:
    run_retention_days: int | None
    """None: the installation's default (the orchestrator's ``MILLRACE_RUN_RETENTION_DAYS``)."""
    export_before_prune: bool
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Credential:
    name: str
    kind: str
    created_at: datetime
    updated_at: datetime


class TenantSettings:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def ai_settings(self, tenant_id: str) -> Row:
        async with self._engine.connect() as connection:
            row = await credentials.ai_settings(connection, tenant_id)
        if row is None:
            raise NotFound("AI settings")
        return row

    async def ai_usage(self, tenant_id: str) -> tuple[ai_usage.MonthUsage, int | None]:
        """This month's (UTC) tokens and calls, and the monthly budget (None without settings or a budget)."""
        now = utc_now()
        async with self._engine.connect() as connection:
            usage = await ai_usage.month_usage(connection, tenant_id, now.date().replace(day=1))
            row = await credentials.ai_settings(connection, tenant_id)
        return usage, (row.monthly_token_budget if row is not None else None)

    async def usage_report(self, tenant_id: str, month: str | None, group_by: str | None) -> UsageReport:
        """The month's (``YYYY-MM``, UTC; this month without one) usage grouped by ``group_by`` (comma
        separated dimensions; all three without one), priced with the tenant's model prices."""
        since = month_asked(month, today=utc_now().date())
        grouping = grouping_asked(group_by)
        until = month_after(since)
        async with self._engine.connect() as connection:
            # One snapshot: the rows, their totals and the budget agree with each other.
            await connection.execution_options(isolation_level="REPEATABLE READ")
            rows = await ai_usage.usage_rows(
                connection, tenant_id, since, until, grouping, limit=MAX_ROWS + 1
            )
            totals = await ai_usage.usage_rows(connection, tenant_id, since, until, (), limit=1)
            used = await ai_usage.budget_used(connection, tenant_id, since)
            settings = await credentials.ai_settings(connection, tenant_id)
        budget = settings.monthly_token_budget if settings is not None else None
        return UsageReport(
            month=since,
            grouping=grouping,
            currency=settings.price_currency if settings is not None else DEFAULT_CURRENCY,
            rows=rows[:MAX_ROWS],
            truncated=len(rows) > MAX_ROWS,
            totals=totals[0] if totals else NO_USAGE,
            monthly_token_budget=budget,
            budget_used=used,
            budget_left=budget_left(budget, used),
        )

    async def network_policy(self, tenant_id: str) -> Row | None:
        async with self._engine.connect() as connection:
            return await network_policies.policy(connection, tenant_id)

    async def put_ai_settings(self, tenant_id: str, settings: AiSettings) -> Row:
        sealed = self._box.seal(settings.api_key) if settings.api_key is not None else None
        async with self._engine.begin() as connection:
            await credentials.put_ai_settings(
                connection,
                tenant_id,
                base_url=settings.base_url,
                model=settings.model,
                api_key_ciphertext=sealed,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                monthly_token_budget=settings.monthly_token_budget,
                allow_private_endpoint=settings.allow_private_endpoint,
                model_prices=settings.model_prices,
                price_currency=settings.price_currency,
                now=utc_now(),
            )
        return await self.ai_settings(tenant_id)

    async def retention(self, tenant_id: str) -> Retention:
        """How long the tenant's finished runs are kept; the defaults until the tenant says."""
        async with self._engine.connect() as connection:
            row = await tenant_retention.retention(connection, tenant_id)
        if row is None:
            return Retention(run_retention_days=None, export_before_prune=False)
        return Retention(row.run_retention_days, row.export_before_prune, row.updated_at)

    async def put_retention(self, tenant_id: str, wanted: Retention) -> Retention:
        async with self._engine.begin() as connection:
            await tenant_retention.put_retention(
                connection,
                tenant_id,
                run_retention_days=wanted.run_retention_days,
                export_before_prune=wanted.export_before_prune,
                now=utc_now(),
            )
        return await self.retention(tenant_id)

    async def create_credential(self, tenant_id: str, name: str, kind: str, secret: str) -> Credential:
        """``secret`` is the credential's JSON, sealed before it is stored."""
        now = utc_now()
        try:
            async with self._engine.begin() as connection:
                await credentials.insert_credential(
                    connection, uuid4(), tenant_id, name, kind, self._box.seal(secret), now
                )
        except IntegrityError as error:
            raise Taken(f"a credential named {name!r} exists", FieldProblem("/body/name", "taken")) from error
        return Credential(name, kind, now, now)

    async def credentials(self, tenant_id: str) -> Sequence[Row]:
        async with self._engine.connect() as connection:
            return await credentials.credentials_of(connection, tenant_id)

    async def credential(self, tenant_id: str, name: str) -> Row:
        async with self._engine.connect() as connection:
            row = await credentials.credential(connection, tenant_id, name)
        if row is None:
            raise NotFound("credential")
        return row

    async def replace_credential(self, tenant_id: str, name: str, kind: str, secret: str) -> Row:
        async with self._engine.begin() as connection:
            if not await credentials.replace_credential(
                connection, tenant_id, name, kind, self._box.seal(secret), utc_now()
            ):
                raise NotFound("credential")
        return await self.credential(tenant_id, name)

    async def delete_credential(self, tenant_id: str, name: str) -> None:
        async with self._engine.begin() as connection:
            if not await credentials.delete_credential(connection, tenant_id, name):
                raise NotFound("credential")
