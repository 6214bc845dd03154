"""The I/O shell around the pure core: load, decide, write events + commands + processed-message row
in one transaction; the outbox relay publishes after commit.

A polled batch takes one or two statements on a direct connection (see ``millrace_common.pg``).
When every run of the batch is in the state cache or is started by it, the batch is decided on
those states and written in one statement that also checks them: each run's log still ends where
its state does, and each started workflow's load leaves room for its new runs (a failed check
raises inside the statement and undoes it). Otherwise, or when that check fails, a read comes
first (which messages were handled before, the runs' log tails, the workflows' load), then the
write (the claims, the events, the projections and the outbox rows), which is atomic on its own.
Nothing is locked between the two: the ``(run_id, seq)`` key of the log and the processed-message
key make the write fail whole if another writer got in between, and the caller then handles the
batch message by message in transactions of their own.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from uuid import UUID, uuid4

import psycopg
from millrace_common.bulk import Write, together
from millrace_common.logs import bound
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_commands import StartRun
from millrace_common.messages.run_events import RunEvent, RunThrottled
from millrace_common.outbox import LiveRelay, Outgoing, outbox_write, records
from millrace_common.pg import DirectConnections
from millrace_common.topics import RUNS_EVENTS, ConsumerGroup, Namespace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_orchestrator.adapters.run_store import (
    BatchRead,
    DefinitionCache,
    UnknownWorkflowVersion,
    append_writes,
    batch_check,
    claim_message,
    claims_write,
    load_events,
    observers_write,
    read_batch,
    run_definition_ref,
    workflow_load,
    write_batch,
    written_ids,
)
from millrace_orchestrator.domain.decide import Message, WorkflowLoad, decide, starts_by_workflow
from millrace_orchestrator.domain.state import RunState, RunStatus, evolve

log = logging.getLogger(__name__)
PRODUCER = "orchestrator"
CONSUMER = ConsumerGroup.ORCHESTRATOR.value
Reject = Callable[[Message, str], Awaitable[None]]


class UnknownRun(LookupError):
    """A node result names a run this orchestrator has no log for."""


class WriteConflict(Exception):
    """Another writer appended to one of the batch's runs, or claimed one of its messages, between the
    batch's read and its write: nothing of the batch was written."""


class RunStateCache:
    """The last known state of recently active runs, put only after its events were written. A batch
    decided on cached states is written with a check that each run's log still ends at its state's
    ``last_seq``; when another instance owned the run for a while, the check fails and the log's
    tail is read and folded in, so a stale entry costs a round trip, never a wrong decision."""

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
        direct: DirectConnections,
        relay: LiveRelay,
        namespace: Namespace,
        definitions: DefinitionCache,
        *,
        states: RunStateCache | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], UUID] = uuid4,
        observe: Callable[[Sequence[RunEvent]], None] = lambda events: None,
        count_batch: Callable[[str], None] = lambda path: None,
    ) -> None:
        self._engine = engine
        self._direct = direct
        self._relay = relay
        self._namespace = namespace
        self._definitions = definitions
        self._states = states or RunStateCache()
        self._clock = clock
        self._new_id = new_id
        self._observe = observe
        self._count_batch = count_batch
        self._checked_writes = True

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
                    started, running = await workflow_load(
                        connection, message.tenant_id, message.workflow_id, now
                    )
                    load = WorkflowLoad(started_last_hour=started, running=running)
                decision = decide(state, message, now=now, new_id=self._new_id, load=load)
                write, outgoing = self._write(decision.events, decision.commands, [])
                ids: list[int] = []
                if write is not None:
                    ids = written_ids((await connection.execute(text(write.sql), write.params)).scalar_one())
            # Only after the commit: a rolled-back decision leaves the cache at the state before it.
            await self._relay.hand_over(ids, outgoing)
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
        state = (
            cached
            if cached is not None and cached.definition is definition
            else RunState(message.run_id, definition)
        )
        for event in await load_events(connection, message.run_id, after_seq=state.last_seq):
            state = evolve(state, event)
        return state

    async def handle_batch(self, messages: Sequence[Message], reject: Reject) -> None:
        """A poll's messages in one or two statements whatever their number: decide each message in
        order against the state the previous ones left, then write the claims, the events, the
        projections and the outbox rows in one statement. When a run of the batch is neither cached
        nor started by it (or that write's check fails), what the batch needs is read first, at
        once. A message naming no known run or workflow version is passed to ``reject`` (a dead
        letter) before the write, which claims it, so it is claimed only once it is set aside.

        Raises :class:`WriteConflict` when another writer got in between (an instance still owning a
        run during a rebalance, or a duplicate delivered to both); the caller then uses ``handle``."""
        todo: dict[UUID, Message] = {}
        for message in messages:
            todo.setdefault(message.message_id, message)
        cached: dict[UUID, RunState] = {}
        for message in todo.values():
            state = self._states.get(message.run_id)
            if state is not None and state.workflow_id is not None:
                cached[message.run_id] = state
        now = self._clock()
        known = self._known_states(todo.values(), cached) if self._checked_writes else None
        if known is not None:
            try:
                await self._decide_and_write(list(todo.values()), known, {}, {}, now, reject, checked=True)
                self._count_batch("cached")
                return
            except WriteConflict as conflict:
                # A duplicate, a run another writer moved on, or a workflow near its limits: decide
                # again on what the database holds.
                self._count_batch("cached_refused")
                log.debug(
                    "batch decided on cached states refused; reading first",
                    extra={"ids": {"why": str(conflict)}},
                )
            except psycopg.errors.UndefinedFunction:
                # A database not migrated to 0008 has no millrace_ensure: every batch reads first.
                self._checked_writes = False
                log.error(
                    "the database lacks millrace_ensure (migration 0008): run the migrations; "
                    "reading every batch first"
                )
        refs_of = {m.run_id for m in todo.values() if m.run_id not in cached and not isinstance(m, StartRun)}
        after_seqs = {m.run_id: cached[m.run_id].last_seq if m.run_id in cached else 0 for m in todo.values()}
        starting = {
            (m.tenant_id, m.workflow_id)
            for m in todo.values()
            if isinstance(m, StartRun)
            and (m.run_id not in cached or cached[m.run_id].status is RunStatus.NEW)
        }
        async with self._direct.connection() as connection:
            read = await read_batch(connection, CONSUMER, list(todo), refs_of, after_seqs, starting, now)
        fresh = [m for m in todo.values() if m.message_id not in read.processed]
        if len(fresh) < len(messages):
            log.info("duplicate messages skipped", extra={"ids": {"count": len(messages) - len(fresh)}})
        states, unknown = await self._states_of(fresh, cached, read)
        loads = {key: WorkflowLoad(started_last_hour=s, running=r) for key, (s, r) in read.loads.items()}
        await self._decide_and_write(fresh, states, loads, unknown, now, reject, checked=False)
        self._count_batch("read")

    def _known_states(
        self, messages: Iterable[Message], cached: dict[UUID, RunState]
    ) -> dict[UUID, RunState] | None:
        """Each run's state without reading, when every message's run is cached or is a new run of a
        workflow version whose definition is loaded; otherwise None."""
        states: dict[UUID, RunState] = {}
        for message in messages:
            if message.run_id in states:
                continue
            state = cached.get(message.run_id)
            if state is None:
                if not isinstance(message, StartRun):
                    return None
                definition = self._definitions.peek(message.workflow_id, message.workflow_version)
                if definition is None:
                    return None
                state = RunState(message.run_id, definition)
            states[message.run_id] = state
        return states

    async def _decide_and_write(
        self,
        messages: Sequence[Message],
        states: dict[UUID, RunState],
        loads: dict[tuple[str, UUID], WorkflowLoad],
        unknown: dict[UUID, str],
        now: datetime,
        reject: Reject,
        *,
        checked: bool,
    ) -> None:
        """Decide ``messages`` in order and write the batch. ``checked``: the states are the cache's
        and the loads unknown (taken as leaving room), so the write checks both and raises
        :class:`WriteConflict` (nothing written) when either was not so."""
        states = dict(states)
        expected = {run_id: state.last_seq for run_id, state in states.items()}
        events: list[RunEvent] = []
        commands: list[Outgoing] = []
        for message in messages:
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
        checks: list[Write] = []
        if checked:
            if any(isinstance(e, RunThrottled) for e in events):
                raise WriteConflict("a run was throttled on an assumed load")
            checks.append(batch_check(expected, starts_by_workflow(events, states), now))
        write, outgoing = self._write(events, commands, [m.message_id for m in messages], checks)
        ids: list[int] = []
        if write is not None:
            try:
                async with self._direct.connection() as connection:
                    ids = await write_batch(connection, write)
            except psycopg.IntegrityError as error:
                raise WriteConflict(str(error)) from error
        await self._relay.hand_over(ids, outgoing)
        for state in states.values():
            self._states.put(state)
        self._observe(events)

    def _write(
        self,
        events: Sequence[RunEvent],
        commands: Sequence[Outgoing],
        claims: Sequence[UUID],
        checks: Sequence[Write] = (),
    ) -> tuple[Write | None, list[tuple[str, bytes | None, bytes]]]:
        """The statement that writes the claims, the events, their projections, the commands and the
        events for observers, returning the outbox rows' ids, and holding ``checks``; and those
        rows' messages. Each event is serialised once, for the log, for ``runs.events`` and for the
        relay."""
        payloads = [e.model_dump_json() for e in events]
        topic = self._namespace.topic(RUNS_EVENTS)
        writes = append_writes(events, payloads=payloads)
        claimed = claims_write(CONSUMER, claims)
        if claimed is not None:
            writes.append(claimed)
        ids_of: list[int] = []
        if commands:
            writes.append(outbox_write(self._namespace, self._relay.tag, commands, returning_ids=True))
            ids_of.append(len(writes) - 1)
        if events:
            writes.append(observers_write(self._relay.tag, topic))
            ids_of.append(len(writes) - 1)
        if not writes:
            return None, []
        checked = list(range(len(writes), len(writes) + len(checks)))
        writes.extend(checks)
        observed = [
            (topic, str(e.run_id).encode(), text.encode()) for e, text in zip(events, payloads, strict=True)
        ]
        return together(writes, ids_of=ids_of, checks=checked), [
            *records(self._namespace, commands),
            *observed,
        ]

    async def _states_of(
        self, messages: Sequence[Message], cached: dict[UUID, RunState], read: BatchRead
    ) -> tuple[dict[UUID, RunState], dict[UUID, str]]:
        """Each run's current state (cached, or new, with the log tail read folded in) and, by message
        id, why a message cannot be handled."""
        unknown: dict[UUID, str] = {}
        states: dict[UUID, RunState] = {}
        for message in messages:
            if message.run_id in states or message.message_id in unknown:
                continue
            state = cached.get(message.run_id)
            if state is None:
                if isinstance(message, StartRun):
                    ref: tuple[UUID, int] | None = (message.workflow_id, message.workflow_version)
                else:
                    ref = read.refs.get(message.run_id)
                if ref is None:
                    unknown[message.message_id] = f"no run {message.run_id}"
                    continue
                try:
                    definition = self._definitions.peek(*ref)
                    if definition is None:
                        async with self._engine.connect() as connection:
                            definition = await self._definitions.get(connection, *ref)
                except UnknownWorkflowVersion as error:
                    unknown[message.message_id] = str(error)
                    continue
                state = RunState(message.run_id, definition)
            for event in read.tails.get(message.run_id, ()):
                state = evolve(state, event)
            states[message.run_id] = state
        return states, unknown
