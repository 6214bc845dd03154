"""The flow node configs: ``sub_workflow`` starts a run of another workflow of the same tenant."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, JsonValue

from millrace_common.language.workflow_configs.base import NodeConfig

SubWorkflowMode = Literal["wait", "fire_and_forget"]


class SubWorkflowConfig(NodeConfig):
    """Starts a run of ``workflow_id`` (its ``version``, else its active version when the node runs)
    with ``input`` rendered as its trigger data, checked against the child's ``input_schema``. With
    ``wait`` the node's output is the child's final output; a child that fails, is cancelled or times
    out fails the node (``sub_workflow_failed``), so retries and ``on_error`` apply. With
    ``fire_and_forget`` the node's output is ``{"run_id": ...}`` of the child, at once."""

    literal_fields = frozenset({"workflow_id", "version", "mode"})

    workflow_id: UUID = Field(description="A workflow of the same tenant")
    version: int | None = Field(
        default=None, ge=1, description="A pinned version; unset: the active version (else the newest)"
    )
    input: dict[str, JsonValue] = Field(
        default_factory=dict, max_length=100, description="The child's trigger data; values are templates"
    )
    mode: SubWorkflowMode = "wait"
