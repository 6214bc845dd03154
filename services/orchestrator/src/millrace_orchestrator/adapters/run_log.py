"""The run log in PostgreSQL (the ``RunLog`` port), on direct psycopg connections: a batch takes one
or two statements (see ``millrace_common.platform.pg``).

When every run of a batch is in the state cache, or is started by it with a definition already
loaded, ``load`` reads nothing: the batch is decided on those states with the workflows' load taken
as leaving room, and ``commit`` writes it in one statement that also checks both (each run's log
still ends where its state does; each started workflow has room for its new runs). A failed check
raises inside the statement and undoes it. Otherwise ``load`` reads first (which messages were
handled before, the runs' log tails, the workflows' load) and ``commit`` writes, atomic on its own.
Nothing is locked between the two: the ``(run_id, seq)`` key of the log and the processed-message
key make the write fail whole if another writer got in between."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from millrace_common.contracts.messages.run_commands import ACTIVE_VERSION, StartRun
from millrace_common.contracts.topics import Namespace
from millrace_common.language.workflow import WorkflowDefinition, node_types
from millrace_common.platform.pg import DirectConnections
from pydantic import ValidationError

from millrace_orchestrator.adapters.run_log_statements import (
    CONSUMER,
    BatchRead,
    batch_check,
    batch_write,
    read_batch,
    write_batch,
)
from millrace_orchestrator.domain.batch import BatchDecision, LoadedBatch
from millrace_orchestrator.domain.decide import Message, WorkflowLoad
from millrace_orchestrator.domain.state import RunState, RunStatus, evolve
from millrace_orchestrator.service_layer.ports import Committed, WriteConflict


class UnknownWorkflowVersion(LookupError):
    pass


class UnloadableDefinition(UnknownWorkflowVersion):
    """A stored version this orchestrator cannot read: most likely a node type from a plugin that is
    not installed here (the gateway that saved it had it)."""

    @classmethod
    def of(cls, workflow_id: UUID, version: int, error: ValidationError) -> UnloadableDefinition:
        tags = [
            str((e.get("ctx") or {}).get("tag")) for e in error.errors() if e["type"] == "union_tag_invalid"
        ]
        reason = node_types().unknown(tags[0]) if tags else str(error).splitlines()[0]
        return cls(
            f"workflow {workflow_id} version {version} cannot be loaded on this orchestrator: {reason}"
        )


class MissingMigration(RuntimeError):
    """The database lacks something the run log's statements use: its migrations were not run."""


class DefinitionCache:
    """Workflow versions are immutable, so a loaded one is kept for the process's life (bounded)."""

    def __init__(self, capacity: int = 2048) -> None:
        self._entries: dict[tuple[UUID, int], WorkflowDefinition] = {}
        self._owners: dict[tuple[UUID, int], str | None] = {}
        self._capacity = capacity

    def owner(self, workflow_id: UUID, version: int) -> str | None:
        """The id of the user who created the workflow, loaded with a version of it (none when an API
        key created it, or before the workflows had owners). It never changes, so it is kept too."""
        return self._owners.get((workflow_id, version))

    def peek(self, workflow_id: UUID, version: int) -> WorkflowDefinition | None:
        """The definition when it is loaded already, without a round trip."""
        return self._entries.get((workflow_id, version))

    async def get(
        self, connection: psycopg.AsyncConnection[Any], workflow_id: UUID, version: int
    ) -> WorkflowDefinition:
        key = (workflow_id, version)
        if key not in self._entries:
            cursor = await connection.execute(
                "select v.definition, u.id::text from workflow_versions v"
                " join workflows w on w.id = v.workflow_id"
                " left join users u on u.id = w.created_by and u.tenant_id = w.tenant_id"
                " where v.workflow_id = %s and v.version = %s",
                (workflow_id, version),
            )
            row = await cursor.fetchone()
            if row is None:
                raise UnknownWorkflowVersion(f"workflow {workflow_id} has no version {version}")
            if len(self._entries) >= self._capacity:
                oldest = next(iter(self._entries))
                self._entries.pop(oldest)
                self._owners.pop(oldest, None)
            self._owners[key] = row[1]
            try:
                self._entries[key] = WorkflowDefinition.model_validate(row[0])
            except ValidationError as error:
                raise UnloadableDefinition.of(workflow_id, version, error) from error
        return self._entries[key]


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


class PostgresRunLog:
    """The ``RunLog`` port in PostgreSQL; ``producer`` names its outbox rows (the relay's tag)."""

    def __init__(
        self,
        connections: DirectConnections,
        namespace: Namespace,
        producer: str,
        *,
        definitions: DefinitionCache | None = None,
        states: RunStateCache | None = None,
    ) -> None:
        self._connections = connections
        self._namespace = namespace
        self._producer = producer
        self._definitions = definitions or DefinitionCache()
        self._states = states or RunStateCache()

    async def require_migrations(self) -> None:
        """Raise :class:`MissingMigration` unless the database has ``millrace_ensure`` (migration
        0008), which the checked write calls: there is no second way to write a batch."""
        async with self._connections.connection() as connection:
            cursor = await connection.execute(
                "select to_regprocedure('millrace_ensure(boolean, text)') is not null"
            )
            row = await cursor.fetchone()
        if not (row and row[0]):
            raise MissingMigration(
                "the database lacks millrace_ensure (migration 0008): run millrace-migrate before starting"
            )

    async def load(self, messages: Sequence[Message], *, now: datetime, read: bool = False) -> LoadedBatch:
        todo = list({m.message_id: m for m in messages}.values())
        cached: dict[UUID, RunState] = {}
        for message in todo:
            state = self._states.get(message.run_id)
            if state is not None and state.workflow_id is not None:
                cached[message.run_id] = state
        if not read:
            known = self._known_states(todo, cached)
            if known is not None:
                return LoadedBatch(known, assumed=True)
        refs_of = {m.run_id for m in todo if m.run_id not in cached and not isinstance(m, StartRun)}
        after_seqs = {m.run_id: cached[m.run_id].last_seq if m.run_id in cached else 0 for m in todo}
        starting = {
            (m.tenant_id, m.workflow_id)
            for m in todo
            if isinstance(m, StartRun)
            and (m.run_id not in cached or cached[m.run_id].status is RunStatus.NEW)
        }
        async with self._connections.connection() as connection:
            found = await read_batch(
                connection, CONSUMER, [m.message_id for m in todo], refs_of, after_seqs, starting, now
            )
        fresh = [m for m in todo if m.message_id not in found.processed]
        states, unknown = await self._states_of(fresh, cached, found)
        loads = {key: WorkflowLoad(started_last_hour=s, running=r) for key, (s, r) in found.loads.items()}
        return LoadedBatch(states, loads, found.processed, unknown)

    async def commit(self, decision: BatchDecision, *, now: datetime) -> Committed:
        assumed = decision.assumptions
        checks = [batch_check(assumed.last_seqs, assumed.starts, now)] if assumed is not None else []
        states = decision.states

        def run_has_approvals(run_id: UUID) -> bool:
            state = states.get(run_id)
            # An agent's tool calls may ask for approvals too.
            return state is not None and bool({"approval", "ai_agent"} & state.definition.types)

        def may_wait_for_records(run_id: UUID) -> bool:
            state = states.get(run_id)
            return state is None or "wait_for_event" in state.definition.types

        write, messages = batch_write(
            self._namespace,
            self._producer,
            decision.events,
            decision.commands,
            decision.claims,
            checks,
            run_has_approvals,
            may_wait_for_records,
        )
        ids: list[int] = []
        if write is not None:
            try:
                async with self._connections.connection() as connection:
                    ids = await write_batch(connection, write)
            except psycopg.IntegrityError as error:
                raise WriteConflict(str(error)) from error
        # Only after the write: a failed one leaves the cache at the states before it.
        for state in decision.states.values():
            self._states.put(state)
        return Committed(ids, messages)

    async def _active_version(self, tenant_id: str, workflow_id: UUID) -> tuple[UUID, int] | None:
        """The version a run of "the active version" gets: the active one, else the newest (as a
        manual run does); None for a workflow of another tenant, an archived or a missing one."""
        async with self._connections.connection() as connection:
            cursor = await connection.execute(
                "select coalesce(active_version, latest_version) from workflows"
                " where id = %s and tenant_id = %s and status <> 'archived'",
                (workflow_id, tenant_id),
            )
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else (workflow_id, int(row[0]))

    def _known_states(
        self, messages: Sequence[Message], cached: dict[UUID, RunState]
    ) -> dict[UUID, RunState] | None:
        """Each run's state without reading, when every message's run is cached or is a new run of a
        workflow version whose definition is loaded; otherwise None."""
        states: dict[UUID, RunState] = {}
        for message in messages:
            if message.run_id in states:
                continue
            state = cached.get(message.run_id)
            if state is None:
                if not isinstance(message, StartRun) or message.workflow_version == ACTIVE_VERSION:
                    return None
                definition = self._definitions.peek(message.workflow_id, message.workflow_version)
                if definition is None:
                    return None
                owner = self._definitions.owner(message.workflow_id, message.workflow_version)
                state = RunState(message.run_id, definition, owner=owner)
            states[message.run_id] = state
        return states

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
                if isinstance(message, StartRun) and message.workflow_version == ACTIVE_VERSION:
                    ref = await self._active_version(message.tenant_id, message.workflow_id)
                    if ref is None:
                        unknown[message.message_id] = (
                            f"workflow {message.workflow_id} does not exist for tenant {message.tenant_id}"
                            " or is archived"
                        )
                        continue
                elif isinstance(message, StartRun):
                    ref = (message.workflow_id, message.workflow_version)
                else:
                    ref = read.refs.get(message.run_id)
                if ref is None:
                    unknown[message.message_id] = f"no run {message.run_id}"
                    continue
                try:
                    definition = self._definitions.peek(*ref)
                    if definition is None:
                        async with self._connections.connection() as connection:
                            definition = await self._definitions.get(connection, *ref)
                except UnknownWorkflowVersion as error:  # or UnloadableDefinition
                    unknown[message.message_id] = str(error)
                    continue
                state = RunState(
                    message.run_id, definition, owner=self._definitions.owner(*ref), workflow_version=ref[1]
                )
            for event in read.tails.get(message.run_id, ()):
                state = evolve(state, event)
            states[message.run_id] = state
        return states, unknown
