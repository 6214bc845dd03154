"""Workflow definitions: React Flow compatible JSON, validated into typed models.

A definition is ``{"nodes": [...], "edges": [...], "settings": {...}}``; each node has ``id``,
``type``, ``position``, an optional ``parentId`` (the for_each whose body it is in), an optional
``description`` (shown on the canvas, never rendered) and ``data`` (its ``name`` and config, see
``workflow_configs``); edges have ``id``, ``source``, ``target``, an optional ``sourceHandle`` and an
optional ``label``. ``settings.variables`` are the workflow's constants, ``workflow.vars`` in
templates. Node types are in ``workflow_nodes`` and re-exported here.
Validating a :class:`WorkflowDefinition` runs every graph check, so a parsed definition is sound;
:func:`millrace_common.language.workflow_validation.validate_definition` reports every problem at once.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from uuid import UUID

from pydantic import Field, JsonValue, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from millrace_common.language import workflow_nodes
from millrace_common.language.workflow_configs import _Frozen
from millrace_common.language.workflow_configs.base import VariableName
from millrace_common.language.workflow_graph import EdgeView, NodeView, Problem, graph_problems
from millrace_common.language.workflow_nodes import *
from millrace_common.language.workflow_nodes import Node, NodeId, TriggerNode, _NodeBase, source_handles

__all__ = [
    "MAX_EDGES",
    "MAX_NODES",
    "MAX_WORKFLOW_VARIABLES",
    "SKIP_GRAPH_CHECKS",
    "Edge",
    "WorkflowDefinition",
    "WorkflowSettings",
    "_NodeBase",
]
__all__ += workflow_nodes.__all__

MAX_NODES = 500
MAX_EDGES = 2000

# Validation context that leaves the graph checks out, for callers that run them themselves
# (validate_definition, which reports them one by one with pointers).
SKIP_GRAPH_CHECKS = "millrace.workflow.skip_graph_checks"


class Edge(_Frozen):
    id: str = Field(min_length=1, max_length=128)
    source: NodeId
    target: NodeId
    source_handle: str | None = Field(default=None, alias="sourceHandle", min_length=1, max_length=200)
    label: str | None = Field(default=None, max_length=200, description="Shown on the canvas; never rendered")


MAX_WORKFLOW_VARIABLES = 100


class WorkflowSettings(_Frozen):
    max_executions_per_hour: int = Field(default=100, ge=1)
    timeout_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    retry_count: int = Field(default=3, ge=0, le=20)
    max_concurrent_runs: int | None = Field(default=None, ge=1)
    webhook_response_wait_seconds: float = Field(
        default=10,
        ge=0,
        le=300,
        description="How long a webhook call waits for the run's respond_to_webhook node before it is "
        "answered 202 (capped by the installation's MILLRACE_WEBHOOK_RESPONSE_MAX_WAIT_SECONDS)",
    )
    variables: dict[VariableName, JsonValue] = Field(
        default_factory=dict,
        max_length=MAX_WORKFLOW_VARIABLES,
        description="Constants every template reads as workflow.vars.<name>; never rendered",
    )
    error_workflow_id: UUID | None = Field(
        default=None,
        description="A workflow of the same tenant started (its active version) when a run of this one "
        "fails or times out, with the failed run's id, workflow, version, failing node, error and trigger "
        "as input; never for a run that is itself an error workflow's",
    )


class WorkflowDefinition(_Frozen):
    """A sound workflow: every node config valid and every graph check passed."""

    nodes: tuple[Node, ...] = Field(min_length=1, max_length=MAX_NODES)
    edges: tuple[Edge, ...] = Field(default=(), max_length=MAX_EDGES)
    settings: WorkflowSettings = WorkflowSettings()

    @model_validator(mode="after")
    def _graph_is_sound(self, info: ValidationInfo) -> WorkflowDefinition:
        if info.context and info.context.get(SKIP_GRAPH_CHECKS):
            return self
        problems = self.graph_problems()
        if problems:
            summary = "; ".join(f"{p.pointer}: {p.message}" for p in problems)
            raise PydanticCustomError(
                "unsound_workflow",
                "{summary}",
                {
                    "summary": summary,
                    "problems": [{"pointer": p.pointer, "message": p.message} for p in problems],
                },
            )
        return self

    def graph_problems(self, *, check_variables: bool = False) -> list[Problem]:
        """The graph checks' findings (empty for a definition that validated normally); with
        ``check_variables``, also those of ``vars`` and ``workflow`` references (see
        ``workflow_graph.graph_problems``)."""
        nodes = [
            NodeView(i, n.id, n.type, n.parent_id, source_handles(n), n.data)
            for i, n in enumerate(self.nodes)
        ]
        edges = [EdgeView(i, e.id, e.source, e.target, e.source_handle) for i, e in enumerate(self.edges)]
        return graph_problems(
            nodes, edges, frozenset(self.settings.variables), check_variables=check_variables
        )

    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def _outgoing(self) -> dict[str, tuple[Edge, ...]]:
        grouped: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            grouped[edge.source].append(edge)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def _incoming(self) -> dict[str, tuple[Edge, ...]]:
        grouped: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            grouped[edge.target].append(edge)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def _bodies(self) -> dict[str, tuple[Node, ...]]:
        grouped: dict[str, list[Node]] = defaultdict(list)
        for node in self.nodes:
            if node.parent_id is not None:
                grouped[node.parent_id].append(node)
        return {k: tuple(v) for k, v in grouped.items()}

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def outgoing(self, node_id: str) -> tuple[Edge, ...]:
        return self._outgoing.get(node_id, ())

    def incoming(self, node_id: str) -> tuple[Edge, ...]:
        return self._incoming.get(node_id, ())

    def body(self, for_each_id: str) -> tuple[Node, ...]:
        """The nodes of a for_each's body (those whose ``parentId`` is ``for_each_id``)."""
        return self._bodies.get(for_each_id, ())

    @cached_property
    def types(self) -> frozenset[str]:
        """The node types the workflow uses."""
        return frozenset(n.type for n in self.nodes)

    @cached_property
    def top_level(self) -> tuple[Node, ...]:
        """The nodes outside every for_each body."""
        return tuple(n for n in self.nodes if n.parent_id is None)

    @property
    def trigger(self) -> TriggerNode:
        return next(n for n in self.nodes if isinstance(n, TriggerNode))
