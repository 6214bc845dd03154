"""Node commands on ``nodes.ready.<class>``, keyed by ``run_id``; results on ``nodes.results``."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from millrace_common.messages.envelope import Envelope, JsonObject


class ExecuteNode(Envelope):
    """Run one side-effecting node once; ``input`` is its config with templates already rendered."""

    type: Literal["node.execute"] = "node.execute"
    run_id: UUID
    workflow_id: UUID
    node_id: str
    node_type: str
    attempt: int = Field(ge=1)
    input: JsonObject
    timeout_seconds: float = Field(gt=0, le=3600)


class NodeError(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    retryable: bool


class NodeSucceededResult(Envelope):
    type: Literal["node.succeeded"] = "node.succeeded"
    run_id: UUID
    node_id: str
    attempt: int
    output: JsonObject
    duration_ms: float


class NodeFailedResult(Envelope):
    type: Literal["node.failed"] = "node.failed"
    run_id: UUID
    node_id: str
    attempt: int
    error: NodeError
    duration_ms: float


AnyNodeCommand = Annotated[ExecuteNode, Field(discriminator="type")]
NODE_COMMAND = TypeAdapter(AnyNodeCommand)
AnyNodeResult = Annotated[NodeSucceededResult | NodeFailedResult, Field(discriminator="type")]
NODE_RESULT = TypeAdapter(AnyNodeResult)
