"""Testing one node of a workflow in the editor, without a run: the context it is tested in (what
the caller gives, filled from pinned sample outputs) and the control nodes evaluated in place, as the
orchestrator evaluates them in a run. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.conditions import Condition, ConditionError, evaluate, parse_condition
from millrace_common.language.templating import TemplateError, render_value
from millrace_common.language.workflow import Node, WorkflowDefinition, node_types
from millrace_common.platform.refusals import FieldProblem, Refused
from pydantic import JsonValue, ValidationError

from millrace_gateway.domain.refusals import NotFound

CONTEXT_PIECES = ("trigger", "nodes", "vars", "item", "index")
"""What a test's ``input`` may give; the rest of the context comes from the definition and the pins."""
EVALUATED_IN_PLACE = frozenset({"set", "end", "condition", "switch", "for_each", "wait_delay", "code"})
"""The types a test evaluates at once in the request (the code node in the gateway's own sandbox)."""
NOT_TESTABLE = frozenset({"trigger", "approval", "ai_agent"})
_WHY_NOT = {
    "ai_agent": "an ai_agent node's loop of model turns and tool calls is driven by the orchestrator, so it "
    "runs only in a run: start a test run, or pin its output as sample data",
}


class SideEffects(Refused):
    status = 409
    code = "side_effects"


class NotTestable(Refused):
    status = 422
    code = "not_testable"


@dataclass(frozen=True)
class NodeTestResult:
    status: Literal["succeeded", "failed"]
    output: JsonObject | None = None
    error: JsonObject | None = None
    handle: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    node_type: str = ""


def node_under_test(definition: WorkflowDefinition, node_id: str) -> Node:
    try:
        return definition.node(node_id)
    except KeyError:
        raise NotFound(f"node {node_id!r}") from None


def context_for_test(
    definition: WorkflowDefinition,
    workflow_id: UUID,
    node: Node,
    given: Mapping[str, JsonValue],
    pinned: Mapping[str, JsonObject],
) -> dict[str, JsonValue]:
    """The context ``node`` is tested in: ``given`` first, then the pinned outputs (the trigger
    node's pin is the trigger's payload), then empty values; inside a for_each body ``item`` is the
    first item a pinned or given ``nodes.<loop>.output`` lists, when not given."""
    unknown = sorted(set(given) - set(CONTEXT_PIECES))
    if unknown:
        raise NotTestable(
            f"the input may give {', '.join(CONTEXT_PIECES)}",
            FieldProblem(f"/input/{unknown[0]}", "not a piece of the template context"),
        )
    trigger_id = definition.trigger.id
    nodes: dict[str, JsonValue] = {
        node_id: {"output": output, "error": None}
        for node_id, output in pinned.items()
        if node_id != trigger_id and node_id != node.id
    }
    given_nodes = given.get("nodes")
    if isinstance(given_nodes, dict):
        nodes.update(given_nodes)
    trigger = given.get("trigger", pinned.get(trigger_id, {}))
    context: dict[str, JsonValue] = {
        "trigger": trigger,
        "workflow": {"id": str(workflow_id), "version": None, "vars": definition.settings.variables},
        "vars": given.get("vars", {}),
        "nodes": nodes,
    }
    if node.parent_id is not None or "item" in given:
        context["item"] = given.get("item")
        context["index"] = given.get("index", 0)
    return context


def evaluate_in_place(
    node: Node, context: Mapping[str, JsonValue], *, now: datetime, new_id: Callable[[], UUID]
) -> NodeTestResult:
    """A control node's outcome in ``context``, as a run would have it (``code`` is not handled here)."""

    def render(value: JsonValue) -> JsonValue:
        return render_value(value, context, now=now, new_id=new_id)

    def holds(condition: Condition) -> bool:
        dumped = condition.model_dump(mode="json", by_alias=True)
        text = json.dumps(dumped)
        if "{{" in text or "{%" in text:
            condition = parse_condition(render(dumped))
        return evaluate(condition, context, now=now)

    data = node.data
    try:
        match node.type:
            case "set":
                return NodeTestResult("succeeded", _object(render(dict(data.variables))))
            case "end":
                return NodeTestResult("succeeded", _object(render(data.output) if data.output else {}))
            case "condition":
                result = holds(data.condition)
                return NodeTestResult("succeeded", {"result": result}, handle="true" if result else "false")
            case "switch":
                chosen = next((c.name for c in data.cases if holds(c.condition)), None)
                handle = f"case:{chosen}" if chosen is not None else "default"
                return NodeTestResult("succeeded", {"case": chosen}, handle=handle)
            case "for_each":
                items = render(data.items)
                if not isinstance(items, list):
                    raise TemplateError(f"'items' rendered to {type(items).__name__}, not a list")
                return NodeTestResult(
                    "succeeded",
                    {"items": items, "count": len(items)},
                    notes=("a preview: the items the loop would run its body for",),
                )
            case "wait_delay":
                config = data.model_dump(mode="json", exclude={"name"})
                return NodeTestResult(
                    "succeeded",
                    _object(render(config)),
                    notes=("a preview: the wait's rendered settings; a test does not wait",),
                )
    except TemplateError as error:
        return failure(NodeErrorType.TEMPLATE, str(error))
    except (ConditionError, ValidationError) as error:
        return failure(NodeErrorType.CONDITION, str(error)[:1000])
    raise NotTestable(f"a {node.type} node is not evaluated in place")


def refuse_untestable(node: Node, *, execute_side_effects: bool) -> None:
    """Refuse a node a test cannot run: a trigger or an approval (they wait for the outside), or a
    side-effecting node without the caller's explicit ``execute_side_effects``."""
    if node.type in NOT_TESTABLE:
        raise NotTestable(
            _WHY_NOT.get(
                node.type, f"a {node.type} node cannot be tested alone; pin its output as sample data instead"
            ),
            FieldProblem("/path/node_id", "a trigger, approval or ai_agent node"),
        )
    if node.type in EVALUATED_IN_PLACE:
        return
    if node.type in node_types().runner_topics() and not execute_side_effects:
        raise SideEffects(
            f"a {node.type} node has side effects (it calls out, writes records or sends); testing it runs "
            'it for real: send "execute_side_effects": true to confirm',
            FieldProblem("/execute_side_effects", "must be true to test a node with side effects"),
        )


def failure(error_type: NodeErrorType, message: str, line: int | None = None) -> NodeTestResult:
    error: JsonObject = {"type": error_type.value, "message": message}
    if line is not None:
        error["line"] = line
    return NodeTestResult("failed", error=error)


def _object(value: JsonValue) -> JsonObject:
    if isinstance(value, dict):
        return value
    return {"value": value}
