"""The I/O shell around the pure core: load, decide, write events + commands + processed-message row
in one transaction; the outbox relay publishes after commit."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_common.logs import bound
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_commands import StartRun
from millrace_common.messages.run_events import RunEvent
from millrace_common.outbox import Outgoing, outbox_write
from millrace_common.topics import RUNS_EVENTS, ConsumerGroup, Namespace

from millrace_orchestrator.adapters.run_store import (
    DefinitionCache,
    UnknownWorkflowVersion,
    append,
    claim_message,
    claim_messages,
    load_events,
    load_tails,
    run_definition_ref,
    run_definition_refs,
    workflow_load,
    workflow_loads,
)
from millrace_orchestrator.domain.decide import Message, WorkflowLoad, decide
from millrace_orchestrator.domain.state import RunState, RunStatus, evolve

log = logging.getLogger(__name__)
PRODUCER = "orchestrator"
CONSUMER = ConsumerGroup.ORCHESTRATOR.value
Reject = Callable[[Message, str], Awaitable[None]]


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
        observe: Callable[[Sequence[RunEvent]], None] = lambda events: None,
    ) -> None:
        self._engine = engine
        self._namespace = namespace
        self._definitions = definitions
        self._states = states or RunStateCache()
        self._clock = clock
        self._new_id = new_id
        self._observe = observe

    async def handle(self, message: Message) -> None:
        with bound(run_id=message.run_id, tenant_id=message.tenant_id):
            async with self._engine.begin() as connection:
                if not await claim_message(connection, CONSUMER, message.message_id):
                    log.info("duplicate message skipped", extra={"ids": {"message_id": message.message_id}})
                    return
                state = await self._load(connection, message)
                now = self._clock()
                load = None
                if isinstance(message, StartRun) and state.status is RunStatus.NEW:
                    started, running = await workflow_load(connection, message.tenant_id, message.workflow_id, now)
                    load = WorkflowLoad(started_last_hour=started, running=running)
                decision = decide(state, message, now=now, new_id=self._new_id, load=load)
                await self._write(connection, decision.events, decision.commands)
            # Only after the commit: a rolled-back decision leaves the cache at the state before it.
            self._states.put(decision.state or state)
            self._observe(decision.events)

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

    async def handle_batch(self, messages: Sequence[Message], reject: Reject) -> None:
        """A poll's messages in one transaction, with a fixed number of statements whatever their
        number: claim them all, read every run's log tail at once, decide each message in order
        against the state the previous ones left, then append all events, the projections and the
        outbox rows. A message naming no known run or workflow version is passed to ``reject`` (a
        dead letter) inside the transaction, so it is claimed only once it is set aside.

        A concurrent writer (another instance still owning a run during a rebalance) makes the
        append fail and the whole batch roll back; the caller then handles the messages one by one."""
        async with self._engine.begin() as connection:
            fresh = await claim_messages(connection, CONSUMER, [m.message_id for m in messages])
            todo: dict[UUID, Message] = {}
            for message in messages:
                if message.message_id in fresh:
                    todo.setdefault(message.message_id, message)
            if len(todo) < len(messages):
                log.info("duplicate messages skipped", extra={"ids": {"count": len(messages) - len(todo)}})
            states, unknown = await self._load_batch(connection, list(todo.values()))
            now = self._clock()
            loads = await self._workflow_loads(connection, list(todo.values()), states, now)
            events: list[RunEvent] = []
            commands: list[Outgoing] = []
            for message in todo.values():
                if message.message_id in unknown:
                    await reject(message, unknown[message.message_id])
                    continue
                state = states[message.run_id]
                key = (state.tenant_id or message.tenant_id, getattr(message, "workflow_id", state.workflow_id))
                load = loads.get(key) if isinstance(message, StartRun) and state.status is RunStatus.NEW else None
                with bound(run_id=message.run_id, tenant_id=message.tenant_id):
                    decision = decide(state, message, now=now, new_id=self._new_id, load=load)
                if key in loads:
                    loads[key] = loads[key].after(decision.events)
                states[message.run_id] = decision.state or state
                events.extend(decision.events)
                commands.extend(decision.commands)
            await self._write(connection, events, commands)
        for state in states.values():
            self._states.put(state)
        self._observe(events)

    async def _write(self, connection: AsyncConnection, events: Sequence[RunEvent], commands: Sequence[Outgoing]) -> None:
        """The events, their projections, the commands and the events for observers, in one statement.
        Each event is serialised once, for the log and for ``runs.events``."""
        payloads = [e.model_dump_json() for e in events]
        observers = [
            Outgoing(RUNS_EVENTS, str(e.run_id), e, value=text.encode())
            for e, text in zip(events, payloads, strict=True)
        ]
        outgoing = [*commands, *observers]
        outbox = [outbox_write(self._namespace, PRODUCER, outgoing)] if outgoing else []
        await append(connection, events, payloads=payloads, together_with=outbox)

    async def _load_batch(
        self, connection: AsyncConnection, messages: Sequence[Message]
    ) -> tuple[dict[UUID, RunState], dict[UUID, str]]:
        """Each run's current state (cache + log tail) and, by message id, why a message cannot be handled."""
        refs: dict[UUID, tuple[UUID, int]] = {}
        for message in messages:
            if isinstance(message, StartRun):
                refs.setdefault(message.run_id, (message.workflow_id, message.workflow_version))
        missing = {m.run_id for m in messages if m.run_id not in refs}
        refs |= await run_definition_refs(connection, missing)
        unknown: dict[UUID, str] = {}
        states: dict[UUID, RunState] = {}
        for message in messages:
            if message.run_id in states or message.message_id in unknown:
                continue
            ref = refs.get(message.run_id)
            if ref is None:
                unknown[message.message_id] = f"no run {message.run_id}"
                continue
            try:
                definition = await self._definitions.get(connection, *ref)
            except UnknownWorkflowVersion as error:
                unknown[message.message_id] = str(error)
                continue
            cached = self._states.get(message.run_id)
            usable = cached is not None and cached.definition is definition
            states[message.run_id] = cached if usable else RunState(message.run_id, definition)
        tails = await load_tails(connection, {run_id: state.last_seq for run_id, state in states.items()})
        for run_id, tail in tails.items():
            state = states[run_id]
            for event in tail:
                state = evolve(state, event)
            states[run_id] = state
        for message in messages:
            if message.run_id not in states and message.message_id not in unknown:
                unknown[message.message_id] = f"no run {message.run_id}"
        return states, unknown

    async def _workflow_loads(
        self, connection: AsyncConnection, messages: Sequence[Message], states: dict[UUID, RunState], now: datetime
    ) -> dict[tuple[str, UUID], WorkflowLoad]:
        starting = {
            (m.tenant_id, m.workflow_id)
            for m in messages
            if isinstance(m, StartRun) and m.run_id in states and states[m.run_id].status is RunStatus.NEW
        }
        read = await workflow_loads(connection, starting, now)
        return {key: WorkflowLoad(started_last_hour=s, running=r) for key, (s, r) in read.items()}
