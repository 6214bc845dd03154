"""Tokens used (per run, workflow, node, tenant and model, and a monthly total per tenant) and each run's
answers by input, so identical input inside a run is not paid for twice."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.tables import ai_answers, ai_token_months, ai_token_usage
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.tenants import reading
from millrace_node_runner.domain.ai import Usage


class AiLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def stored_answer(self, run_id: UUID, input_hash: str) -> JsonObject | None:
        async with reading(self._engine) as connection:
            return (
                await connection.execute(
                    select(ai_answers.c.output).where(
                        ai_answers.c.run_id == run_id, ai_answers.c.input_hash == input_hash
                    )
                )
            ).scalar_one_or_none()

    async def tokens_used(self, tenant_id: str, month: date) -> int:
        async with reading(self._engine) as connection:
            used = (
                await connection.execute(
                    select(ai_token_months.c.total_tokens).where(
                        ai_token_months.c.tenant_id == tenant_id, ai_token_months.c.month == month
                    )
                )
            ).scalar_one_or_none()
        return int(used or 0)

    async def record(
        self,
        *,
        tenant_id: str,
        run_id: UUID,
        workflow_id: UUID,
        node_id: str,
        attempt: int,
        model: str,
        usage: Usage,
        month: date,
        now: datetime,
        input_hash: str,
        output: JsonObject | None,
    ) -> None:
        """The call's tokens, and its output when it is one to reuse, in one transaction."""
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(ai_token_usage).values(
                    tenant_id=tenant_id,
                    run_id=run_id,
                    workflow_id=workflow_id,
                    node_id=node_id,
                    attempt=attempt,
                    model=model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    total_tokens=usage.total_tokens,
                    recorded_at=now,
                )
            )
            added = pg_insert(ai_token_months).values(
                tenant_id=tenant_id, month=month, total_tokens=usage.total_tokens
            )
            await connection.execute(
                added.on_conflict_do_update(
                    index_elements=["tenant_id", "month"],
                    set_={"total_tokens": ai_token_months.c.total_tokens + added.excluded.total_tokens},
                )
            )
            if output is not None:
                await connection.execute(
                    pg_insert(ai_answers)
                    .values(run_id=run_id, input_hash=input_hash, output=output, created_at=now)
                    .on_conflict_do_nothing()
                )
