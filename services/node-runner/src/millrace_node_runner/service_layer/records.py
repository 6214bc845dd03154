"""Record nodes and ``task_notify``: inputs checked, the causation limit applied to every change,
each write done once per attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from millrace_common.contracts.messages.node_commands import ExecuteNode

from millrace_node_runner.adapters.record_store import RecordStore
from millrace_node_runner.domain.inputs import (
    RecordCreateInput,
    RecordDeleteInput,
    RecordFindInput,
    RecordUpdateInput,
    TaskNotifyInput,
)
from millrace_node_runner.domain.outcomes import Outcome
from millrace_node_runner.domain.records import depth_refusal, prefilter

Clock = Callable[[], datetime]


class RecordNodes:
    def __init__(self, store: RecordStore, *, max_causation_depth: int, clock: Clock) -> None:
        self._store = store
        self._max_depth = max_causation_depth
        self._clock = clock

    async def create(self, command: ExecuteNode) -> Outcome:
        node = RecordCreateInput.model_validate(command.input)
        if (refusal := depth_refusal(command.causation_depth, self._max_depth)) is not None:
            return refusal
        now = self._clock()
        return await self._store.once(
            command, self._store.create(command, node.pipeline_id, node.data, now), now
        )

    async def update(self, command: ExecuteNode) -> Outcome:
        node = RecordUpdateInput.model_validate(command.input)
        if (refusal := depth_refusal(command.causation_depth, self._max_depth)) is not None:
            return refusal
        now = self._clock()
        write = self._store.update(command, node.pipeline_id, node.record_id, node.data, node.mode, now)
        return await self._store.once(command, write, now)

    async def delete(self, command: ExecuteNode) -> Outcome:
        node = RecordDeleteInput.model_validate(command.input)
        if (refusal := depth_refusal(command.causation_depth, self._max_depth)) is not None:
            return refusal
        now = self._clock()
        return await self._store.once(
            command, self._store.delete(command, node.pipeline_id, node.record_id, now), now
        )

    async def find(self, command: ExecuteNode) -> Outcome:
        node = RecordFindInput.model_validate(command.input)
        return await self._store.find(
            command.tenant_id,
            node.pipeline_id,
            node.filters,
            prefilter(node.filters),
            node.sort,
            node.limit,
            self._clock(),
        )

    async def notify(self, command: ExecuteNode) -> Outcome:
        node = TaskNotifyInput.model_validate(command.input)
        now = self._clock()
        write = self._store.create_task(
            command,
            user=node.assignee.user,
            role=node.assignee.role,
            title=node.title,
            message=node.message,
            now=now,
        )
        return await self._store.once(command, write, now)
