"""Testing a node without a run, and the pinned sample outputs it uses: a control node is evaluated in
the request as the orchestrator would, the code node in the gateway's own sandbox (the same module
and limits as the node runner's), in the context the caller gives filled from the pins. Nothing is
sent to Kafka and no run is created; pins are read only here and by the editor, never by runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import ExecuteNode, NodeSucceededResult
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.contracts.topics import Topic
from millrace_common.language.templating import TemplateError
from millrace_common.language.workflow import Node, WorkflowDefinition, node_types
from millrace_common.platform.code_sandbox import CodeFailure, CodeSandbox
from pydantic import JsonValue
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import node_pins, workflows
from millrace_gateway.adapters.tested_nodes import TestedNodes
from millrace_gateway.domain.node_tests import (
    NodeTestResult,
    NotTestable,
    context_for_test,
    evaluate_in_place,
    failure,
    node_under_test,
    refuse_untestable,
)
from millrace_gateway.domain.refusals import NotFound
from millrace_gateway.domain.workflows import checked_definition

Clock = Callable[[], datetime]


class NodeTests:
    def __init__(
        self,
        engine: AsyncEngine,
        sandbox: CodeSandbox,
        tested: TestedNodes,
        clock: Clock,
        *,
        answer_grace_seconds: float = 10,
    ) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._tested = tested
        self._clock = clock
        self._answer_grace_seconds = answer_grace_seconds

    async def test(self, tenant_id: str, workflow_id: UUID, node_id: str, **asked: Any) -> NodeTestResult:
        """Run ``node_id`` of the workflow (or of the unsaved ``draft``) on ``given`` and the pins."""
        result, node_type = await self._test(tenant_id, workflow_id, node_id, **asked)
        return replace(result, node_type=node_type)

    async def _test(
        self,
        tenant_id: str,
        workflow_id: UUID,
        node_id: str,
        *,
        given: JsonObject,
        use_pinned: bool,
        execute_side_effects: bool,
        draft: dict[str, JsonValue] | None,
    ) -> tuple[NodeTestResult, str]:
        async with self._engine.connect() as connection:
            row = await workflows.summary(connection, tenant_id, workflow_id)
            if row is None:
                raise NotFound("workflow")
            pinned = await node_pins.all_of(connection, tenant_id, workflow_id) if use_pinned else []
        definition = checked_definition(draft) if draft is not None else _saved(row)
        node = node_under_test(definition, node_id)
        refuse_untestable(node, execute_side_effects=execute_side_effects)
        context = context_for_test(
            definition, workflow_id, node, given, {p.node_id: p.output for p in pinned}
        )
        now = self._clock()
        if node.type == "code":
            outcome = await self._sandbox.run(node.data.code, context, now=now)
            if isinstance(outcome, CodeFailure):
                return failure(outcome.error_type, outcome.message, outcome.line), node.type
            output: JsonObject = {"result": outcome.result, "printed": outcome.printed}
            return NodeTestResult("succeeded", output), node.type
        if node.type in {"set", "end", "condition", "switch", "for_each", "wait_delay"}:
            return evaluate_in_place(node, context, now=now, new_id=uuid4), node.type
        topic = node_types().runner_topics().get(node.type)
        if topic is None:
            raise NotTestable(f"a {node.type} node is not tested alone")
        return await self._run_for_real(tenant_id, workflow_id, node, topic, context, now), node.type

    async def _run_for_real(
        self,
        tenant_id: str,
        workflow_id: UUID,
        node: Node,
        topic: Topic,
        context: dict[str, JsonValue],
        now: datetime,
    ) -> NodeTestResult:
        """A node with side effects, confirmed: run by its runner, as a run would, and awaited."""
        try:
            rendered = node.data.runner_input(lambda: context, now=now, new_id=uuid4)
        except TemplateError as error:
            return failure(NodeErrorType.TEMPLATE, str(error))
        test_id = uuid4()
        command = ExecuteNode(
            tenant_id=tenant_id,
            occurred_at=now,
            correlation_id=test_id,
            run_id=test_id,
            workflow_id=workflow_id,
            node_id=node.id,
            node_type=node.type,
            attempt=1,
            input=rendered,
            timeout_seconds=node.data.timeout_seconds,
            test=True,
        )
        wait = node.data.timeout_seconds + self._answer_grace_seconds
        result = await self._tested.execute(topic, command, wait_seconds=wait)
        if result is None:
            return failure(
                NodeErrorType.TIMEOUT, f"no node runner answered the test within {wait:g} s; is one running?"
            )
        if isinstance(result, NodeSucceededResult):
            return NodeTestResult("succeeded", result.output)
        return failure(_error_type(result.error.type), result.error.message)

    async def pins(self, tenant_id: str, workflow_id: UUID) -> list[Row]:
        async with self._engine.connect() as connection:
            await _workflow(connection, tenant_id, workflow_id)
            return list(await node_pins.all_of(connection, tenant_id, workflow_id))

    async def pin(self, tenant_id: str, workflow_id: UUID, node_id: str) -> Row:
        for row in await self.pins(tenant_id, workflow_id):
            if row.node_id == node_id:
                return row
        raise NotFound(f"pin of node {node_id!r}")

    async def put_pin(
        self, tenant_id: str, workflow_id: UUID, node_id: str, output: JsonObject, *, by: UUID | None
    ) -> Row:
        async with self._engine.begin() as connection:
            await _workflow(connection, tenant_id, workflow_id)
            return await node_pins.put(
                connection, tenant_id, workflow_id, node_id, output, by=by, now=self._clock()
            )

    async def unpin(self, tenant_id: str, workflow_id: UUID, node_id: str) -> None:
        async with self._engine.begin() as connection:
            await _workflow(connection, tenant_id, workflow_id)
            if not await node_pins.remove(connection, tenant_id, workflow_id, node_id):
                raise NotFound(f"pin of node {node_id!r}")


def _saved(row: Row) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(row.definition)


async def _workflow(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Row:
    row = await workflows.summary(connection, tenant_id, workflow_id)
    if row is None:
        raise NotFound("workflow")
    return row


def _error_type(name: str) -> NodeErrorType:
    try:
        return NodeErrorType(name)
    except ValueError:
        return NodeErrorType.RUNNER_ERROR
