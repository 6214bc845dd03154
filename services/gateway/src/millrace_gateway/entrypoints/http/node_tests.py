"""Testing one node of a workflow without a run, and its pinned sample outputs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Response
from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Row

from millrace_gateway.entrypoints.http.deps import NodeTestsDep, Reader, WorkflowEditor

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

NodeIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class NodeTestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonObject = Field(
        default_factory=dict,
        description="Context pieces: trigger, nodes (as nodes.<id>.output), vars, item, index",
    )
    use_pinned: bool = Field(
        default=True, description="Fill what input does not give from the pinned outputs"
    )
    execute_side_effects: bool = Field(
        default=False, description="Confirms testing a node with side effects (it would run for real)"
    )
    definition: dict[str, JsonValue] | None = Field(
        default=None, description="The unsaved draft to test in; absent: the newest saved version"
    )


class NodeTestError(BaseModel):
    type: str
    message: str
    line: int | None = None


class NodeTestOut(BaseModel):
    node_id: str
    node_type: str
    status: Literal["succeeded", "failed"]
    output: JsonObject | None = None
    error: NodeTestError | None = None
    handle: str | None = Field(default=None, description="The handle a run would leave the node by")
    notes: list[str] = Field(default_factory=list)


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: JsonObject = Field(description="The node's sample output, as nodes.<id>.output would be")


class PinOut(BaseModel):
    node_id: str
    output: JsonObject
    pinned_by: UUID | None
    pinned_at: datetime


@router.post(
    "/{workflow_id}/nodes/{node_id}/test",
    response_model=NodeTestOut,
    responses=declared(
        conflict="the node has side effects and execute_side_effects is not true",
        unprocessable_entity="the draft is not valid, or the node cannot be tested alone",
    ),
)
async def test_node(
    workflow_id: UUID, node_id: NodeIdPath, body: NodeTestBody, editor: WorkflowEditor, tests: NodeTestsDep
) -> NodeTestOut:
    """Run one node on sample data, without a run: control nodes and the code node at once; a node
    that fails is answered 200 with its error, as a run would record it."""
    result = await tests.test(
        editor.tenant_id,
        workflow_id,
        node_id,
        given=body.input,
        use_pinned=body.use_pinned,
        execute_side_effects=body.execute_side_effects,
        draft=body.definition,
    )
    return NodeTestOut(
        node_id=node_id,
        node_type=result.node_type,
        status=result.status,
        output=result.output,
        error=NodeTestError.model_validate(result.error) if result.error else None,
        handle=result.handle,
        notes=list(result.notes),
    )


@router.get("/{workflow_id}/pins", response_model=list[PinOut])
async def list_pins(workflow_id: UUID, reader: Reader, tests: NodeTestsDep) -> list[PinOut]:
    """Every pinned sample output of the workflow's nodes."""
    return [_pin(row) for row in await tests.pins(reader.tenant_id, workflow_id)]


@router.get("/{workflow_id}/nodes/{node_id}/pin", response_model=PinOut)
async def get_pin(workflow_id: UUID, node_id: NodeIdPath, reader: Reader, tests: NodeTestsDep) -> PinOut:
    return _pin(await tests.pin(reader.tenant_id, workflow_id, node_id))


@router.put("/{workflow_id}/nodes/{node_id}/pin", response_model=PinOut)
async def put_pin(
    workflow_id: UUID, node_id: NodeIdPath, body: PinBody, editor: WorkflowEditor, tests: NodeTestsDep
) -> PinOut:
    """Pin a sample output for the node: tests of later nodes and the editor's suggestions use it;
    runs never do."""
    row = await tests.put_pin(editor.tenant_id, workflow_id, node_id, body.output, by=editor.subject)
    return _pin(row)


@router.delete("/{workflow_id}/nodes/{node_id}/pin", status_code=204)
async def delete_pin(
    workflow_id: UUID, node_id: NodeIdPath, editor: WorkflowEditor, tests: NodeTestsDep
) -> Response:
    await tests.unpin(editor.tenant_id, workflow_id, node_id)
    return Response(status_code=204)


def _pin(row: Row) -> PinOut:
    return PinOut(node_id=row.node_id, output=row.output, pinned_by=row.pinned_by, pinned_at=row.pinned_at)
