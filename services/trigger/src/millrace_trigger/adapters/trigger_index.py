"""The index of active workflow triggers, looked up by tenant, kind and pipeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_common.tables import active_triggers

from millrace_trigger.domain.matching import Candidate

ANY_PIPELINE = "*"


class TriggerIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def candidates(self, tenant_id: str, kind: str, pipeline_id: str) -> list[Candidate]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(active_triggers.c.workflow_id, active_triggers.c.workflow_version).where(
                    active_triggers.c.tenant_id == tenant_id,
                    active_triggers.c.trigger_kind == kind,
                    active_triggers.c.pipeline_id.in_((pipeline_id, ANY_PIPELINE)),
                )
            )
            return [Candidate(row.workflow_id, row.workflow_version) for row in rows]
