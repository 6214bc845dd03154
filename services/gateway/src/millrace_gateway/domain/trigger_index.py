"""What the trigger service needs to know of an activated workflow version: its trigger's config and
hourly limit, and the index entries it is looked up by. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_configs.triggers import ANY_PIPELINE

"""The index's pipeline for a trigger on every pipeline, and for webhook and scheduled triggers."""


@dataclass(frozen=True)
class ActiveTrigger:
    workflow_id: UUID
    tenant_id: str
    workflow_version: int
    trigger_kind: str
    config: JsonObject
    activated_at: datetime
    pipelines: tuple[str, ...]
    """The index has one entry per pipeline: (tenant, kind, pipeline) to this workflow version."""


def active_trigger(
    tenant_id: str, workflow_id: UUID, version: int, definition: WorkflowDefinition, activated_at: datetime
) -> ActiveTrigger | None:
    """The activated version's trigger; None for a manual trigger, which is not indexed (its runs start
    through the API)."""
    trigger = definition.trigger.data
    if trigger.kind == "manual":
        return None
    return ActiveTrigger(
        workflow_id=workflow_id,
        tenant_id=tenant_id,
        workflow_version=version,
        trigger_kind=trigger.kind,
        config=trigger.model_dump(mode="json", by_alias=True),
        activated_at=activated_at,
        pipelines=tuple(trigger.pipeline_ids or (ANY_PIPELINE,)),
    )
