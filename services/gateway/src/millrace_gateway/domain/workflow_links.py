"""The workflows a definition names (each sub_workflow node's workflow, each ai_agent node's workflow
tools, the error workflow) and the rule they must follow at save: each a workflow of the same tenant
that exists and is not archived, a pinned version one it has, and no workflow its own error workflow.
A sub_workflow node (or an agent's tool) may name its own workflow: the orchestrator's depth limit
bounds such a run (docs/node-reference.md). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from millrace_common.language.workflow import SubWorkflowConfig, WorkflowDefinition
from millrace_common.language.workflow_configs import AiAgentConfig, WorkflowTool
from millrace_common.platform.refusals import FieldProblem

from millrace_gateway.domain.refusals import InvalidDefinition


@dataclass(frozen=True)
class WorkflowLink:
    pointer: str
    workflow_id: UUID
    version: int | None = None


@dataclass(frozen=True)
class LinkedWorkflow:
    """What the check needs of a named workflow: its newest version and its status."""

    latest_version: int
    status: str


def workflow_links(definition: WorkflowDefinition) -> list[WorkflowLink]:
    links = [
        WorkflowLink(f"/definition/nodes/{index}/data/workflow_id", node.data.workflow_id, node.data.version)
        for index, node in enumerate(definition.nodes)
        if isinstance(node.data, SubWorkflowConfig)
    ]
    links += [
        WorkflowLink(
            f"/definition/nodes/{index}/data/tools/{position}/workflow_id", tool.workflow_id, tool.version
        )
        for index, node in enumerate(definition.nodes)
        if isinstance(node.data, AiAgentConfig)
        for position, tool in enumerate(node.data.tools)
        if isinstance(tool, WorkflowTool)
    ]
    error_workflow = definition.settings.error_workflow_id
    if error_workflow is not None:
        links.append(WorkflowLink("/definition/settings/error_workflow_id", error_workflow))
    return links


def refuse_broken_links(
    links: list[WorkflowLink],
    found: Mapping[UUID, LinkedWorkflow],
    *,
    own_id: UUID | None,
    own_next_version: int,
) -> None:
    """Raise ``InvalidDefinition`` naming every link that breaks the rule; ``found`` has the linked
    workflows of the caller's tenant (a workflow of another tenant is as missing as one that is not)."""
    problems: list[FieldProblem] = []
    for link in links:
        if link.workflow_id == own_id:
            if link.pointer.endswith("error_workflow_id"):
                problems.append(FieldProblem(link.pointer, "a workflow cannot be its own error workflow"))
            elif link.version is not None and link.version > own_next_version:
                problems.append(FieldProblem(link.pointer, f"this workflow has no version {link.version}"))
            continue
        target = found.get(link.workflow_id)
        if target is None:
            problems.append(FieldProblem(link.pointer, f"no workflow {link.workflow_id} in this tenant"))
        elif target.status == "archived":
            problems.append(FieldProblem(link.pointer, f"workflow {link.workflow_id} is archived"))
        elif link.version is not None and link.version > target.latest_version:
            problems.append(
                FieldProblem(link.pointer, f"workflow {link.workflow_id} has no version {link.version}")
            )
    if problems:
        raise InvalidDefinition(
            f"the workflow definition names {len(problems)} workflow(s) it cannot use", *problems
        )
