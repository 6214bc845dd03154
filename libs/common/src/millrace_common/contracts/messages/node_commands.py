"""Node commands on ``nodes.ready.<class>``, keyed by ``run_id``; results on ``nodes.results`` (those
of a node tested from the editor, ``test`` true, on ``nodes.test_results``)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import Envelope


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
    causation_depth: int = Field(
        default=0,
        ge=0,
        description="How many workflow runs led to the record event that started this run (0 for outside "
        "changes, manual and scheduled runs); a record node's own event carries this plus one",
    )
    test: bool = Field(
        default=False,
        description="A node tested from the editor (no run: run_id is the test's own id); its result goes "
        "to nodes.test_results, which the gateway awaits, never to the orchestrator",
    )


class NodeError(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    retryable: bool
    retry_after_seconds: float | None = Field(
        default=None, ge=0, description="How long the target asked to be left alone (HTTP Retry-After)"
    )


class NodeSucceededResult(Envelope):
    type: Literal["node.succeeded"] = "node.succeeded"
    run_id: UUID
    node_id: str
    attempt: int
    output: JsonObject
    duration_ms: float
    test: bool = False


class NodeFailedResult(Envelope):
    type: Literal["node.failed"] = "node.failed"
    run_id: UUID
    node_id: str
    attempt: int
    error: NodeError
    duration_ms: float
    test: bool = False


AnyNodeCommand = Annotated[ExecuteNode, Field(discriminator="type")]
NODE_COMMAND = TypeAdapter(AnyNodeCommand)
AnyNodeResult = Annotated[NodeSucceededResult | NodeFailedResult, Field(discriminator="type")]
NODE_RESULT = TypeAdapter(AnyNodeResult)
