"""Settling a run after a message: start what is ready in each scope (the top level, each item of a
for_each), finish for_each items and loops, and finish the run when nothing is left."""

from __future__ import annotations

from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_events import (
    ForEachItemCompleted,
    ForEachItemScheduled,
    NodeSkipped,
    RunCompleted,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.workflow import Edge, Node
from millrace_common.language.workflow_nodes import ERROR_HANDLE
from pydantic import JsonValue

from millrace_orchestrator.domain.building import _Builder, _instance
from millrace_orchestrator.domain.nodes import _start
from millrace_orchestrator.domain.outcomes import _fail, _succeed
from millrace_orchestrator.domain.state import (
    TERMINAL_NODE_STATUSES,
    NodeStatus,
    RunState,
    RunStatus,
    instance_key,
    outer_scope,
)


def _settle(builder: _Builder) -> None:
    """Make every possible step: start what is ready in each scope, finish for_each items and
    loops, and finish the run when nothing is left (dead-path elimination: joins never hang)."""
    progressed = True
    while progressed and builder.state.status is RunStatus.RUNNING:
        touched, builder.touched = builder.touched, set()
        items_touched: dict[str, set[int]] = {}
        for item_scope in touched:
            outer, index = outer_scope(item_scope)
            items_touched.setdefault(outer, set()).add(index)
        progressed = _advance_scope(builder, None, "")
        # Sorted: a map's order follows the process's string hashing, and decisions must not.
        for loop_key in sorted(builder.state.loops.keys()):
            if builder.state.status is not RunStatus.RUNNING:
                return
            if builder.state.node(loop_key).status is not NodeStatus.SCHEDULED:
                continue
            node, scope = _instance(builder.state, loop_key)
            # Only the items an event touched can move: looking at every running item made a
            # message cost O(max_concurrency) in a loop with many items in flight.
            running = builder.state.loops[loop_key].running
            for index in sorted(i for i in items_touched.get(scope, ()) if i in running):
                progressed |= _advance_scope(builder, node.id, f"{scope}[{index}]")
            progressed |= _fill_loop(builder, node, scope)
    definition = builder.state.definition
    if builder.state.status is RunStatus.RUNNING and all(
        builder.state.node(n.id).status in TERMINAL_NODE_STATUSES for n in definition.top_level
    ):
        builder.emit(RunCompleted, final_output=builder.state.final_output)


def _advance_scope(builder: _Builder, parent_id: str | None, scope: str) -> bool:
    """One pass over a scope (the top level, or one item of a for_each); True if anything moved."""
    definition = builder.state.definition
    members = definition.body(parent_id) if parent_id else definition.top_level
    progressed = False
    for node in members:
        if builder.state.status is not RunStatus.RUNNING:
            return progressed
        key = instance_key(node.id, scope)
        if builder.state.node(key).status is not NodeStatus.PENDING:
            continue
        incoming = definition.incoming(node.id)
        if not incoming and parent_id is None:
            continue
        edges = [_edge_state(builder.state, edge, scope) for edge in incoming]
        if "open" in edges:
            continue
        progressed = True
        if not edges or "taken" in edges:
            _start(builder, node, scope)
        else:
            builder.emit(NodeSkipped, node_id=key, node_type=node.type)
    if parent_id is not None and all(
        builder.state.node(instance_key(n.id, scope)).status in TERMINAL_NODE_STATUSES for n in members
    ):
        _complete_item(builder, parent_id, scope, members)
        progressed = True
    return progressed


def _edge_state(state: RunState, edge: Edge, scope: str) -> str:
    source = state.node(instance_key(edge.source, scope))
    if source.status is NodeStatus.SUCCEEDED:
        if source.taken_handles is None:
            return "dead" if edge.source_handle == ERROR_HANDLE else "taken"
        return "taken" if edge.source_handle in source.taken_handles else "dead"
    if source.status is NodeStatus.FAILED:
        return "taken" if edge.source_handle == ERROR_HANDLE else "dead"
    if source.status is NodeStatus.SKIPPED:
        return "dead"
    return "open"


def _complete_item(builder: _Builder, loop_id: str, scope: str, members: tuple[Node, ...]) -> None:
    loop_scope, index = outer_scope(scope)
    loop_key = instance_key(loop_id, loop_scope)
    if index not in builder.state.loops[loop_key].running:
        return
    definition = builder.state.definition
    failed = [
        builder.state.node(instance_key(n.id, scope))
        for n in members
        if builder.state.node(instance_key(n.id, scope)).status is NodeStatus.FAILED
        and n.data.on_error != "error_edge"
    ]
    if failed:
        error = failed[0].error
        builder.emit(ForEachItemCompleted, node_id=loop_key, index=index, outcome="failed", error=error)
        return
    sinks = [n for n in members if not definition.outgoing(n.id)]
    outputs = {n.id: builder.state.node(instance_key(n.id, scope)).output for n in sinks}
    result = next(iter(outputs.values())) if len(outputs) == 1 else outputs
    builder.emit(ForEachItemCompleted, node_id=loop_key, index=index, outcome="succeeded", result=result)


def _fill_loop(builder: _Builder, node: Node, scope: str) -> bool:
    """Start items up to the loop's concurrency; finish the loop when every item is done."""
    key = instance_key(node.id, scope)
    loop = builder.state.loops[key]
    attempt = builder.state.node(key).attempt
    if node.data.failure_policy == "fail" and loop.failures:
        index, error = min(loop.failures.items())
        failure = NodeError(
            type=NodeErrorType.ITEM_FAILED, message=f"item {index} failed: {error.message}", retryable=False
        )
        _fail(builder, node, scope, attempt, failure)
        return True
    progressed = False
    while len(builder.state.loops[key].running) < node.data.max_concurrency and builder.state.loops[
        key
    ].next_index < len(loop.items):
        builder.emit(ForEachItemScheduled, node_id=key, index=builder.state.loops[key].next_index)
        progressed = True
    loop = builder.state.loops[key]
    if loop.done:
        results: list[JsonValue] = []
        for index in range(len(loop.items)):
            if index in loop.results:
                results.append(loop.results[index])
            elif node.data.failure_policy == "collect":
                results.append({"error": loop.failures[index].model_dump(mode="json")})
        output = {"results": results, "failed": len(loop.failures), "count": len(loop.items)}
        _succeed(builder, node, scope, attempt, output)
        progressed = True
    return progressed
