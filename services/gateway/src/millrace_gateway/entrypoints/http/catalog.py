"""What the builder needs to draw forms: node types with their JSON schemas, and condition presets."""

from __future__ import annotations

from fastapi import APIRouter
from millrace_common.language.conditions import PRESETS
from millrace_common.language.workflow import NODE_CATEGORIES, node_type_schemas
from pydantic import JsonValue

from millrace_gateway.entrypoints.http.deps import Reader

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/node-types")
async def node_types(_: Reader) -> list[dict[str, JsonValue]]:
    schemas = node_type_schemas()
    return [
        {"type": node_type, "category": category, "schema": schemas[node_type]}
        for category, types in NODE_CATEGORIES.items()
        for node_type in types
    ]


@router.get("/condition-presets")
async def condition_presets(_: Reader) -> dict[str, JsonValue]:
    return {name: condition.model_dump(mode="json", by_alias=True) for name, condition in PRESETS.items()}
