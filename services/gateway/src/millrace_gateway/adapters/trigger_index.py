"""The trigger index, written only here: ``active_triggers`` (one row per pipeline of an active trigger,
looked up by tenant, kind and pipeline) and ``workflow_triggers`` (each active trigger's config and
hourly limit). The gateway writes both in the transaction that activates, pauses or archives a workflow;
the trigger service and the gateway's webhook receiver read them (docs/architecture.md, "Who writes
which table"). A database trigger moves the tenant's ``trigger_index_versions`` row with every change
of ``active_triggers``, so the trigger service knows when to reload its cache."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.tables import active_triggers, workflow_triggers
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.trigger_index import ActiveTrigger, active_trigger


async def replace(connection: AsyncConnection, workflow_id: UUID, trigger: ActiveTrigger | None) -> None:
    """The workflow's entries become ``trigger``'s (none for None: paused, archived or manual)."""
    await connection.execute(delete(active_triggers).where(active_triggers.c.workflow_id == workflow_id))
    await connection.execute(delete(workflow_triggers).where(workflow_triggers.c.workflow_id == workflow_id))
    if trigger is not None:
        index, config = rows_of(trigger)
        await connection.execute(insert(active_triggers), index)
        await connection.execute(insert(workflow_triggers), [config])


def rows_of(trigger: ActiveTrigger) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The ``active_triggers`` rows and the ``workflow_triggers`` row of an active trigger."""
    index: list[dict[str, object]] = [
        {
            "workflow_id": trigger.workflow_id,
            "tenant_id": trigger.tenant_id,
            "trigger_kind": trigger.trigger_kind,
            "pipeline_id": pipeline,
            "workflow_version": trigger.workflow_version,
        }
        for pipeline in trigger.pipelines
    ]
    config: dict[str, object] = {
        "workflow_id": trigger.workflow_id,
        "tenant_id": trigger.tenant_id,
        "workflow_version": trigger.workflow_version,
        "trigger_kind": trigger.trigger_kind,
        "config": trigger.config,
        "activated_at": trigger.activated_at,
    }
    return index, config


def trigger_index_rows(
    tenant_id: str, workflow_id: UUID, version: int, definition: WorkflowDefinition, activated_at: datetime
) -> tuple[list[dict[str, object]], dict[str, object] | None]:
    """The rows activating ``definition`` writes, for benches that fill the index without the API:
    ``([], None)`` for a manual trigger."""
    trigger = active_trigger(tenant_id, workflow_id, version, definition, activated_at)
    return rows_of(trigger) if trigger is not None else ([], None)
