"""The I/O shell around the pure core: load, decide, write events + commands + processed-message row
in one transaction; the outbox relay publishes after commit."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_common.logs import bound
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_commands import StartRun
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.topics import RUNS_EVENTS, ConsumerGroup, Namespace

from millrace_orchestrator.adapters.run_store import (
    DefinitionCache,
    append,
    claim_message,
    load_events,
    run_definition_ref,
    workflow_load,
)
from millrace_orchestrator.domain.decide import Message, WorkflowLoad, decide
from millrace_orchestrator.domain.state import RunState, RunStatus, evolve

log = logging.getLogger(__name__)
PRODUCER = "orchestrator"


class UnknownRun(LookupError):
    """A node result names a run this orchestrator has no log for."""


class RunStateCache:
    """The last known state of recently active runs. A cached state is only a starting point: the
    log's tail after its ``last_seq`` is always read and folded in, so an entry that is stale (another
    instance owned the run for a while) costs a few rows, never a wrong decision."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._states: OrderedDict[UUID, RunState] = OrderedDict()
        self._capacity = capacity

    def get(self, run_id: UUID) -> RunState | None:
        state = self._states.get(run_id)
        if state is not None:
            self._states.move_to_end(run_id)
        return state

    def put(self, state: RunState) -> None:
        if state.finished:
            self._states.pop(state.run_id, None)
            return
        self._states[state.run_id] = state
        self._states.move_to_end(state.run_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)


class RunMessageHandler:
    def __init__(
        self,
        engine: AsyncEngine,
        namespace: Namespace,
        definitions: DefinitionCache,
        *,
        states: RunStateCache | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._engine = engine
        self._namespace = namespace
        self._definitions = definitions
        self._states = states or RunStateCache()
        self._clock = clock
        self._new_id = new_id

    async def handle(self, message: Message) -> None:
        with bound(run_id=message.run_id, tenant_id=message.tenant_id):
            async with self._engine.begin() as connection:
                if not await claim_message(connection, ConsumerGroup.ORCHESTRATOR.value, message.message_id):
                    log.info("duplicate message skipped", extra={"ids": {"message_id": message.message_id}})
                    return
                state = await self._load(connection, message)
                now = self._clock()
                load = None
                if isinstance(message, StartRun) and state.status is RunStatus.NEW:
                    started, running = await workflow_load(connection, message.tenant_id, message.workflow_id, now)
                    load = WorkflowLoad(started_last_hour=started, running=running)
                decision = decide(state, message, now=now, new_id=self._new_id, load=load)
                await append(connection, decision.events)
                observers = [Outgoing(RUNS_EVENTS, str(e.run_id), e) for e in decision.events]
                await enqueue(connection, self._namespace, PRODUCER, [*decision.commands, *observers])
            # Only after the commit: a rolled-back decision leaves the cache at the state before it.
            self._states.put(decision.state or state)

    async def _load(self, connection: AsyncConnection, message: Message) -> RunState:
        if isinstance(message, StartRun):
            ref: tuple[UUID, int] | None = (message.workflow_id, message.workflow_version)
        else:
            ref = await run_definition_ref(connection, message.run_id)
        if ref is None:
            raise UnknownRun(f"no run {message.run_id}")
        definition = await self._definitions.get(connection, *ref)
        cached = self._states.get(message.run_id)
        state = cached if cached is not None and cached.definition is definition else RunState(message.run_id, definition)
        for event in await load_events(connection, message.run_id, after_seq=state.last_seq):
            state = evolve(state, event)
        return state
