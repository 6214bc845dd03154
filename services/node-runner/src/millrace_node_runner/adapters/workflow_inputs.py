"""The declared input of the workflows an agent's workflow tools run, read from the tables the gateway
writes: the ``input_schema`` of the trigger of the workflow's active version (or the pinned one)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.workflow_configs.agent import WorkflowTool
from millrace_common.platform.tables import workflow_versions, workflows
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.tenants import reading
from millrace_node_runner.domain.agent import manual_input_schema


class WorkflowInputs:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def input_schemas(
        self, tenant_id: str, tools: Iterable[WorkflowTool]
    ) -> dict[UUID, JsonObject | None]:
        """Each tool's workflow that the tenant may run, with its input schema (None: it declares
        none). A workflow of another tenant, an archived or a missing one, or a pinned version that
        does not exist, is left out: the tool is not available."""
        found: dict[UUID, JsonObject | None] = {}
        tools = tuple(tools)
        if not tools:
            return found
        async with reading(self._engine) as connection:
            for tool in tools:
                version = (
                    tool.version
                    if tool.version is not None
                    else func.coalesce(workflows.c.active_version, workflows.c.latest_version)
                )
                definition = (
                    await connection.execute(
                        select(workflow_versions.c.definition)
                        .join(workflows, workflows.c.id == workflow_versions.c.workflow_id)
                        .where(
                            workflows.c.id == tool.workflow_id,
                            workflows.c.tenant_id == tenant_id,
                            workflows.c.status != "archived",
                            workflow_versions.c.tenant_id == tenant_id,
                            workflow_versions.c.version == version,
                        )
                    )
                ).first()
                if definition is not None:
                    found[tool.workflow_id] = manual_input_schema(definition[0])
        return found
