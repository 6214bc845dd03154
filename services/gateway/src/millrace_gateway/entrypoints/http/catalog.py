"""What the builder needs to draw forms: node types with their JSON schemas, and condition presets."""

from __future__ import annotations

from fastapi import APIRouter
from millrace_common.language.conditions import PRESETS
from millrace_common.language.workflow import node_catalog
from pydantic import JsonValue

from millrace_gateway.entrypoints.http.deps import Reader

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/node-types")
async def node_types(_: Reader) -> list[dict[str, JsonValue]]:
    """Every node type this gateway knows (the built-in ones and its installed plugins')."""
    return node_catalog()


@router.get("/condition-presets")
async def condition_presets(_: Reader) -> dict[str, JsonValue]:
    return {name: condition.model_dump(mode="json", by_alias=True) for name, condition in PRESETS.items()}
