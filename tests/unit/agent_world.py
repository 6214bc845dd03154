"""A run of an ai_agent node in the pure core, its commands answered by a scripted model and an in-memory
record store that writes once per idempotency key, as the runners do: what the agent tests share."""

from __future__ import annotations

import itertools
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

from millrace_common.contracts.messages.node_commands import (
    ExecuteNode,
    NodeError,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.contracts.messages.run_events import (
    RunEvent,
)
from millrace_common.language.agent_tools import call_problem
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_configs import AiAgentConfig
from millrace_orchestrator.domain.decide import Message, decide
from millrace_orchestrator.domain.state import RunState, evolve

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RECORDS = {"kind": "records", "pipelines": ["deals"], "actions": ["find", "update"]}


def agent_workflow(**data: object) -> WorkflowDefinition:
    agent = {
        "id": "agent",
        "type": "ai_agent",
        "data": {
            "name": "agent",
            "task": "Find open deals over {{ trigger.min }} in pipeline deals and mark them for review",
            "tools": [RECORDS],
            **data,
        },
    }
    nodes = [
        {"id": "start", "type": "trigger", "data": {"name": "start", "kind": "manual"}},
        agent,
        {
            "id": "done",
            "type": "end",
            "data": {"name": "done", "output": {"said": "{{ nodes.agent.output.answer }}"}},
        },
    ]
    edges = [
        {"id": "e1", "source": "start", "target": "agent"},
        {"id": "e2", "source": "agent", "target": "done"},
    ]
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges, "settings": {"retry_count": 0}})


def call(name: str, arguments: object, call_id: str | None = None) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": call_id or f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


Script = Callable[[list[dict]], dict]
"""The model: the conversation so far -> its assistant message (``content`` and ``tool_calls``)."""


@dataclass
class Runners:
    """The AI runner (a scripted model) and the record runner (one write per idempotency key)."""

    model: Script
    config: AiAgentConfig
    records: dict[str, dict] = field(default_factory=dict)
    writes: Counter[tuple[str, int]] = field(default_factory=Counter)
    outputs: dict[tuple[str, int], dict] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    fail_tools: bool = False

    def run(self, command: ExecuteNode) -> NodeSucceededResult | NodeFailedResult:
        ids = {
            "tenant_id": command.tenant_id,
            "run_id": command.run_id,
            "node_id": command.node_id,
            "attempt": command.attempt,
            "duration_ms": 1.0,
        }
        if command.node_type == "ai_agent":
            self.requests.append(command.input)
            try:
                said = self.model(command.input["messages"])
            except RuntimeError:  # a model that raises stands for an endpoint answering 503
                error = NodeError(type="ai_status", message="the AI endpoint answered 503", retryable=True)
                return NodeFailedResult(error=error, **ids)
            message = {"role": "assistant", **said}
            calls = []
            for made in message.get("tool_calls") or []:
                try:
                    arguments = json.loads(made["function"]["arguments"])
                except ValueError:
                    arguments = None
                name = made["function"]["name"]
                problem = (
                    call_problem(self.config, name, arguments)
                    if isinstance(arguments, dict)
                    else "the arguments are not a JSON object"
                )
                calls.append({"id": made["id"], "name": name, "arguments": arguments, "problem": problem})
            output = {
                "message": message,
                "calls": calls,
                "model": "scripted",
                "finish_reason": "tool_calls" if calls else "stop",
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                "cached": False,
            }
            return NodeSucceededResult(output=output, **ids)
        if self.fail_tools:
            error = NodeError(type="http_status", message="the target answered 503", retryable=True)
            return NodeFailedResult(error=error, **ids)
        key = (command.node_id, command.attempt)
        if key in self.outputs:  # the record store's once-per-key: a redelivery gets the stored output
            return NodeSucceededResult(output=self.outputs[key], **ids)
        self.writes[key] += 1
        spec = command.input
        if command.node_type == "record_find":
            found = [
                {"id": rid, "pipeline_id": "deals", "data": r}
                for rid, r in sorted(self.records.items())
                if all(_holds(r, c) for c in (spec["filters"] or {"and": []})["and"])
            ]
            output = {"records": found, "count": len(found)}
        elif command.node_type == "record_update":
            self.records[spec["record_id"]] = {**self.records[spec["record_id"]], **spec["data"]}
            output = {"record": {"id": spec["record_id"], "data": self.records[spec["record_id"]]}}
        else:
            raise AssertionError(f"unexpected {command.node_type}")
        self.outputs[key] = output
        return NodeSucceededResult(output=output, **ids)


def _holds(record: dict, comparison: dict) -> bool:
    value = record.get(comparison["field"].removeprefix("data."))
    if comparison["operator"] == "greater_than":
        return isinstance(value, int | float) and value > comparison["value"]
    if comparison["operator"] == "equals":
        return value == comparison["value"]
    raise AssertionError(comparison)


@dataclass
class Run:
    definition: WorkflowDefinition
    runners: Runners
    now: datetime = START
    log: list[RunEvent] = field(default_factory=list)
    queue: deque[Message] = field(default_factory=deque)
    sent: list[ExecuteNode] = field(default_factory=list)
    duplicate: Callable[[ExecuteNode], bool] = lambda _: False
    """Whether a command is delivered twice (a runner that died before committing its offset)."""

    def __post_init__(self) -> None:
        counter = itertools.count(1)
        self.new_id = lambda: UUID(int=(1 << 64) + next(counter))
        self.run_id = uuid4()
        self.state = RunState(self.run_id, self.definition, workflow_version=1)

    def start(self, data: dict) -> Run:
        trigger = TriggerData(kind="manual", data=data, started_by="u1")
        self.send(
            StartRun(
                tenant_id="t1",
                run_id=self.run_id,
                workflow_id=uuid4(),
                workflow_version=1,
                trigger=trigger,
                idempotency_key=str(self.run_id),
            )
        )
        return self

    def send(self, message: Message) -> None:
        self.queue.append(message)
        while self.queue:
            decision = decide(self.state, self.queue.popleft(), now=self.now, new_id=self.new_id)
            self.log.extend(decision.events)
            for event in decision.events:
                self.state = evolve(self.state, event)
            assert self.state == decision.state or not decision.events
            for outgoing in decision.commands:
                command = outgoing.message
                if isinstance(command, ExecuteNode):
                    self.sent.append(command)
                    result = self.runners.run(command)
                    self.queue.append(result)
                    if self.duplicate(command):
                        self.queue.append(self.runners.run(command))

    def events(self, kind: type[RunEvent]) -> list:
        return [e for e in self.log if isinstance(e, kind)]

    @property
    def agent(self):
        return self.state.node("agent")

    def replayed(self) -> RunState:
        state = RunState(self.run_id, self.definition, workflow_version=1)
        for event in self.log:
            state = evolve(state, event)
        return state


DEALS = {
    "d1": {"name": "Acme", "amount": 25_000, "status": "open"},
    "d2": {"name": "Small", "amount": 5_000, "status": "open"},
    "d3": {"name": "Big but won", "amount": 50_000, "status": "won"},
    "d4": {"name": "Globex", "amount": 12_000, "status": "open"},
}


def deals_model(messages: list[dict]) -> dict:
    """Find open deals over 10,000, mark each for review, then say what it did."""
    tool_results = [m for m in messages if m["role"] == "tool"]
    if not tool_results:
        where = [
            {"field": "status", "operator": "equals", "value": "open"},
            {"field": "amount", "operator": "greater_than", "value": 10_000},
        ]
        return {"content": None, "tool_calls": [call("find_records", {"pipeline": "deals", "where": where})]}
    if len(tool_results) == 1:
        found = json.loads(tool_results[0]["content"])["records"]
        return {
            "content": None,
            "tool_calls": [
                call(
                    "update_record",
                    {"pipeline": "deals", "record_id": r["id"], "data": {"review": True}},
                    f"u{i}",
                )
                for i, r in enumerate(found)
            ],
        }
    return {"content": f"Marked {len(tool_results) - 1} deals for review.", "tool_calls": []}


def deals_run(model: Script = deals_model, **data: object) -> Run:
    definition = agent_workflow(**data)
    config = definition.node("agent").data
    return Run(definition, Runners(model, config, records={k: dict(v) for k, v in DEALS.items()}))
