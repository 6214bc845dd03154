"""What the builder needs to draw forms: node types with their JSON schemas, and condition presets."""

from __future__ import annotations

from fastapi import APIRouter
from millrace_common.language.conditions import PRESETS
from millrace_common.language.workflow import WorkflowSettings, node_catalog
from pydantic import BaseModel, Field, JsonValue

from millrace_gateway.entrypoints.http.deps import Reader

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class ConditionPresetOut(BaseModel):
    id: str = Field(description="The preset's stable name, e.g. invoice_overdue")
    name: str = Field(description="What the builder shows, e.g. 'Invoice is overdue'")
    description: str
    condition: JsonValue = Field(description="The condition tree the builder inserts, as stored")


@router.get("/node-types")
async def node_types(_: Reader) -> list[dict[str, JsonValue]]:
    """Every node type this gateway knows (the built-in ones and its installed plugins')."""
    return node_catalog()


@router.get("/workflow-settings-schema")
async def workflow_settings_schema(_: Reader) -> dict[str, JsonValue]:
    """The JSON Schema of a definition's ``settings`` (limits, retries, variables, the error workflow)."""
    schema: dict[str, JsonValue] = WorkflowSettings.model_json_schema(by_alias=True)
    return schema


@router.get("/condition-presets", response_model=list[ConditionPresetOut])
async def condition_presets(_: Reader) -> list[ConditionPresetOut]:
    """The ready-made conditions, each with a name and a description, in a stable order."""
    return [
        ConditionPresetOut(
            id=key,
            name=preset.name,
            description=preset.description,
            condition=preset.condition.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        )
        for key, preset in PRESETS.items()
    ]
