"""What a node's templates and conditions see and render to, and the size bound on what a node is
given or puts out: the problems the orchestrator refuses a node for before it runs."""

from __future__ import annotations

import json

from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, too_large
from millrace_common.language.conditions import Condition, ConditionError, evaluate, parse_condition
from millrace_common.language.templating import TemplateError, render_value
from millrace_common.language.workflow import Node
from pydantic import JsonValue

from millrace_orchestrator.domain.building import _Builder
from millrace_orchestrator.domain.state import NodeStatus, RunState, instance_key, outer_scope


def template_context(state: RunState, parent_id: str | None = None, scope: str = "") -> dict[str, JsonValue]:
    """What templates see: ``trigger`` (its payload and kind), ``workflow`` (its id, version and
    constants, ``workflow.vars``), ``vars``,
    ``nodes.<id>.output`` (and ``.error``); inside a for_each body also each enclosing loop's current
    item under its ``item_variable`` (an inner loop's name hides an outer one's) and ``index`` (the
    innermost loop's), and ``nodes`` then includes every enclosing body's nodes of the current item.
    Built from the definition, so its cost does not grow with the number of items a loop has run."""
    trigger = state.trigger
    visible = [(n.id, n.id) for n in state.definition.top_level]
    for loop_id, body_scope in _enclosing_loops(state, parent_id, scope):
        visible += [(n.id, instance_key(n.id, body_scope)) for n in state.definition.body(loop_id)]
    nodes: dict[str, JsonValue] = {}
    for node_id, key in visible:
        node = state.nodes.get(key)
        if node is not None and node.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED):
            nodes[node_id] = {
                "output": node.output,
                "error": node.error.model_dump(mode="json") if node.error else None,
            }
    context: dict[str, JsonValue] = {
        "trigger": {"kind": trigger.kind, **trigger.data} if trigger else {},
        "workflow": {
            "id": str(state.workflow_id),
            "version": state.workflow_version,
            "vars": state.definition.settings.variables,
        },
        "vars": dict(state.variables),
        "nodes": nodes,
    }
    return context | loop_items(state, parent_id, scope)


def loop_items(state: RunState, parent_id: str | None, scope: str) -> dict[str, JsonValue]:
    """Each enclosing loop's current item under its ``item_variable``, and ``index`` (innermost)."""
    items: dict[str, JsonValue] = {}
    for loop_id, body_scope in reversed(_enclosing_loops(state, parent_id, scope)):
        loop_scope, index = outer_scope(body_scope)
        loop = state.definition.node(loop_id)
        name = getattr(loop.data, "item_variable", "item")
        items[name] = state.loops[instance_key(loop_id, loop_scope)].items[index]
        items["index"] = index
    return items


def _enclosing_loops(state: RunState, parent_id: str | None, scope: str) -> list[tuple[str, str]]:
    """The for_each nodes around a node in scope ``scope``, innermost first, each with the scope of
    its body's nodes for the current item (``[3][1]`` in the inner loop, ``[3]`` in the outer)."""
    loops: list[tuple[str, str]] = []
    while parent_id is not None:
        loops.append((parent_id, scope))
        parent_id = state.definition.node(parent_id).parent_id
        scope = outer_scope(scope)[0]
    return loops


class PayloadTooLarge(Exception):
    """A node's input or output no message could carry (``millrace_common.contracts.limits``)."""


def _bounded(value: JsonValue, what: str) -> JsonValue:
    """``value``, or :class:`PayloadTooLarge` when a message could not carry it."""
    size = too_large(value)
    if size is not None:
        raise PayloadTooLarge(
            f"the node's {what} is {size:,} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES:,}"
        )
    return value


_REFUSALS = (ConditionError, TemplateError, PayloadTooLarge)
"""What the orchestrator finds wrong with a node before it runs: the node fails, not retried."""


def _render(builder: _Builder, node: Node, scope: str, value: JsonValue) -> JsonValue:
    context = template_context(builder.state, node.parent_id, scope)
    return render_value(value, context, now=builder.now, new_id=builder.new_id)


def _holds(builder: _Builder, node: Node, scope: str, condition: Condition) -> bool:
    context = template_context(builder.state, node.parent_id, scope)
    return evaluate(_rendered_condition(builder, context, condition), context, now=builder.now)


def _rendered_condition(builder: _Builder, context: dict[str, JsonValue], condition: Condition) -> Condition:
    """The tree with the templates in its compared values rendered (its field paths are literal)."""
    dumped = _templated_condition(condition)
    if dumped is None:
        return condition
    return parse_condition(render_value(dumped, context, now=builder.now, new_id=builder.new_id))


_TEMPLATED: dict[int, tuple[Condition, JsonValue | None]] = {}


def _templated_condition(condition: Condition) -> JsonValue | None:
    """The condition as JSON when any of its values is a template, else None (it is used as it is).
    Remembered per condition object (a definition's conditions live as long as the definition)."""
    known = _TEMPLATED.get(id(condition))
    if known is not None and known[0] is condition:
        return known[1]
    dumped = condition.model_dump(mode="json", by_alias=True)
    text = json.dumps(dumped)
    templated = dumped if ("{{" in text or "{%" in text or "{#" in text) else None
    if len(_TEMPLATED) >= 4096:
        _TEMPLATED.clear()
    _TEMPLATED[id(condition)] = (condition, templated)
    return templated
