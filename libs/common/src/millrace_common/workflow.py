"""Workflow definitions: React Flow compatible JSON, validated into typed models.

A definition is ``{"nodes": [...], "edges": [...], "settings": {...}}``; each node has ``id``,
``type``, ``position`` and ``data`` (its ``name`` and config), edges have ``source``, ``target`` and
an optional ``sourceHandle``.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from millrace_common.topics import NODES_READY_HTTP, Topic

NodeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Position(_Frozen):
    x: float = 0
    y: float = 0


class NodeConfig(_Frozen):
    name: str = Field(min_length=1, max_length=200)


class TriggerConfig(NodeConfig):
    kind: Literal["record_created", "record_updated", "record_deleted", "manual"]
    pipeline_ids: tuple[str, ...] = ()


class HttpRequestConfig(NodeConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1, max_length=4096, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    body: JsonValue = None
    timeout_seconds: float = Field(default=30, gt=0, le=300)


class EndConfig(NodeConfig):
    pass


class _NodeBase(_Frozen):
    id: NodeId
    position: Position = Position()
    parent_id: NodeId | None = Field(default=None, alias="parentId")


class TriggerNode(_NodeBase):
    type: Literal["trigger"]
    data: TriggerConfig


class HttpRequestNode(_NodeBase):
    type: Literal["http_request"]
    data: HttpRequestConfig


class EndNode(_NodeBase):
    type: Literal["end"]
    data: EndConfig


Node = Annotated[TriggerNode | HttpRequestNode | EndNode, Field(discriminator="type")]

# Which runner topic a side-effecting node type goes to; types not listed are control nodes the
# orchestrator evaluates itself.
RUNNER_TOPICS: dict[str, Topic] = {"http_request": NODES_READY_HTTP}


class Edge(_Frozen):
    id: str = Field(min_length=1, max_length=128)
    source: NodeId
    target: NodeId
    source_handle: str | None = Field(default=None, alias="sourceHandle")


class WorkflowSettings(_Frozen):
    max_executions_per_hour: int = Field(default=100, ge=1)
    timeout_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    retry_count: int = Field(default=3, ge=0, le=20)
    max_concurrent_runs: int | None = Field(default=None, ge=1)


class WorkflowDefinition(_Frozen):
    nodes: tuple[Node, ...] = Field(min_length=1, max_length=500)
    edges: tuple[Edge, ...] = ()
    settings: WorkflowSettings = WorkflowSettings()

    @model_validator(mode="after")
    def _graph_is_sound(self) -> WorkflowDefinition:
        problems: list[str] = []
        ids = [n.id for n in self.nodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            problems.append(f"duplicate node ids: {', '.join(duplicates)}")
        known = set(ids)
        for index, edge in enumerate(self.edges):
            for end in (edge.source, edge.target):
                if end not in known:
                    problems.append(f"/edges/{index}: refers to unknown node {end!r}")
        triggers = [n.id for n in self.nodes if n.type == "trigger"]
        if len(triggers) != 1:
            problems.append(f"a workflow has exactly one trigger node, found {len(triggers)}")
        if not problems and self._has_cycle():
            problems.append("the graph has a cycle")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _has_cycle(self) -> bool:
        indegree = {n.id: len(self.incoming(n.id)) for n in self.nodes}
        ready = [i for i, d in indegree.items() if d == 0]
        seen = 0
        while ready:
            current = ready.pop()
            seen += 1
            for edge in self.outgoing(current):
                indegree[edge.target] -= 1
                if indegree[edge.target] == 0:
                    ready.append(edge.target)
        return seen != len(self.nodes)

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

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def outgoing(self, node_id: str) -> tuple[Edge, ...]:
        return self._outgoing.get(node_id, ())

    def incoming(self, node_id: str) -> tuple[Edge, ...]:
        return self._incoming.get(node_id, ())

    @property
    def trigger(self) -> TriggerNode:
        return next(n for n in self.nodes if isinstance(n, TriggerNode))
