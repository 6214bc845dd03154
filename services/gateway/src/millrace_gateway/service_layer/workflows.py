"""Workflow use cases: drafts and their versions, activation (the version and the trigger index in one
transaction), pausing and archiving, copies, and manual runs (the StartRun stored in the outbox in the
transaction that checks the version)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_validation import ValidationReport, validate_definition
from pydantic import JsonValue
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import topic_grants, trigger_index, workflows
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.pages import Page
from millrace_gateway.domain.refusals import NotFound, UnknownVersion
from millrace_gateway.domain.runs import manual_run_id, refuse_mismatched_input
from millrace_gateway.domain.topic_grants import refuse_ungranted_topics, uses_topics
from millrace_gateway.domain.trigger_index import active_trigger
from millrace_gateway.domain.workflow_links import refuse_broken_links, workflow_links
from millrace_gateway.domain.workflows import (
    ScheduleCursor,
    ScheduleView,
    Status,
    checked_definition,
    copy_name,
    refuse_if_archived,
    refuse_oversized_copy,
    schedule_views,
)


@dataclass(frozen=True)
class ManualRun:
    run_id: UUID
    workflow_version: int


class Workflows:
    """Each use case runs in a transaction of its own; a workflow is returned as its summary row
    (``adapters.workflows.summary``)."""

    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, *, changed: Callable[[], None] = lambda: None
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._changed = changed
        """Called after a change of a workflow's state, trigger or active version ended, committed or
        not (the webhook addresses' memory forgets what it read)."""

    @staticmethod
    def validate(definition: dict[str, JsonValue]) -> ValidationReport:
        return validate_definition(definition)

    async def create(
        self,
        tenant_id: str,
        name: str,
        definition: dict[str, JsonValue],
        *,
        description: str = "",
        by: UUID | None = None,
    ) -> Row:
        """A new draft whose version 1 is ``definition``, owned by ``by`` (a user or an API key)."""
        checked = checked_definition(definition)
        async with self._engine.begin() as connection:
            await _check_links(connection, tenant_id, checked, own_id=None, own_next_version=1)
            await _refuse_ungranted_topics(connection, tenant_id, checked)
            return await self._new_draft(connection, tenant_id, name, checked, description, by)

    async def page(
        self, tenant_id: str, *, status: Status | None, name: str | None, limit: int, offset: int
    ) -> Page:
        async with self._engine.connect() as connection:
            return await workflows.summaries(
                connection, tenant_id, status=status, name=name, limit=limit, offset=offset
            )

    async def get(self, tenant_id: str, workflow_id: UUID) -> Row:
        async with self._engine.connect() as connection:
            return await _summary(connection, tenant_id, workflow_id)

    async def get_with_schedules(self, tenant_id: str, workflow_id: UUID) -> tuple[Row, list[ScheduleView]]:
        """The workflow, and each schedule of its trigger (the active version's while it is active)
        with its last and next slot and its count of runs."""
        async with self._engine.connect() as connection:
            row = await _summary(connection, tenant_id, workflow_id)
            definition = WorkflowDefinition.model_validate(row.definition)
            if row.active_version is not None and row.active_version != row.latest_version:
                definition = await _definition(
                    connection, workflow_id, row.active_version, pointer="/path/workflow_id", status=422
                )
            if definition.trigger.data.kind != "scheduled":
                return row, []
            cursors = {
                c.schedule_name: ScheduleCursor(c.activated_at, c.last_slot_at, c.next_slot_at, c.run_count)
                for c in await workflows.schedules(connection, workflow_id)
            }
        return row, schedule_views(definition, cursors, active=row.status == "active")

    async def update(
        self,
        tenant_id: str,
        workflow_id: UUID,
        name: str,
        definition: dict[str, JsonValue],
        *,
        description: str | None = None,
        by: UUID | None = None,
    ) -> Row:
        """Save version n+1; earlier versions stay as they were, and the active one stays active.
        ``description`` None keeps the workflow's description."""
        checked = checked_definition(definition)
        async with self._engine.begin() as connection:
            current = await _locked(connection, tenant_id, workflow_id)
            refuse_if_archived(current.status, "be changed")
            await _refuse_ungranted_topics(connection, tenant_id, checked)
            version = current.latest_version + 1
            await _check_links(connection, tenant_id, checked, own_id=workflow_id, own_next_version=version)
            await workflows.add_version(connection, tenant_id, workflow_id, version, checked, utc_now())
            await workflows.advance(
                connection,
                workflow_id,
                name=name,
                latest_version=version,
                now=utc_now(),
                updated_by=by,
                description=description,
            )
            return await _summary(connection, tenant_id, workflow_id)

    async def versions(self, tenant_id: str, workflow_id: UUID) -> tuple[int | None, Sequence[Row]]:
        """The active version's number, and every version's number and creation time."""
        async with self._engine.connect() as connection:
            current = await _summary(connection, tenant_id, workflow_id)
            return current.active_version, await workflows.versions(connection, workflow_id)

    async def version(self, tenant_id: str, workflow_id: UUID, version: int) -> tuple[int | None, Row]:
        """The active version's number, and the version asked for with its definition."""
        async with self._engine.connect() as connection:
            current = await _summary(connection, tenant_id, workflow_id)
            row = await workflows.version(connection, workflow_id, version)
        if row is None:
            raise NotFound("workflow version")
        return current.active_version, row

    async def activate(self, tenant_id: str, workflow_id: UUID, version: int | None) -> Row:
        """Pin ``version`` (None: the newest) as the one triggers start, and index its trigger, in one
        transaction. Activating an older version is how a change is rolled back."""
        try:
            return await self._activate(tenant_id, workflow_id, version)
        finally:
            self._changed()  # also when the commit's outcome is unknown: forgetting costs a read

    async def _activate(self, tenant_id: str, workflow_id: UUID, version: int | None) -> Row:
        async with self._engine.begin() as connection:
            current = await _locked(connection, tenant_id, workflow_id)
            refuse_if_archived(current.status, "be activated")
            version = version or current.latest_version
            definition = await _definition(
                connection, workflow_id, version, pointer="/body/version", status=404
            )
            trigger = active_trigger(tenant_id, workflow_id, version, definition, utc_now())
            await trigger_index.replace(connection, workflow_id, trigger)
            await workflows.set_status(
                connection, workflow_id, "active", active_version=version, now=utc_now()
            )
            return await _summary(connection, tenant_id, workflow_id)

    async def pause(self, tenant_id: str, workflow_id: UUID) -> Row:
        """Triggers stop starting runs; runs in flight go on."""
        return await self._deactivate(tenant_id, workflow_id, "paused")

    async def archive(self, tenant_id: str, workflow_id: UUID) -> Row:
        return await self._deactivate(tenant_id, workflow_id, "archived")

    async def duplicate(self, tenant_id: str, workflow_id: UUID, *, by: UUID | None = None) -> Row:
        """A new draft named "<name> (copy)" whose version 1 is the source's newest definition, with
        the source's description, owned by ``by``."""
        async with self._engine.begin() as connection:
            source = await _locked(connection, tenant_id, workflow_id)
            definition = await _definition(
                connection, workflow_id, source.latest_version, pointer="/path/workflow_id", status=422
            )
            refuse_oversized_copy(definition)
            return await self._new_draft(
                connection, tenant_id, copy_name(source.name), definition, source.description, by
            )

    async def start_manual_run(
        self,
        tenant_id: str,
        workflow_id: UUID,
        *,
        started_by: str,
        data: JsonObject,
        version: int | None,
        idempotency_key: str | None,
    ) -> ManualRun:
        """Ask for a run of ``version`` (None: the active, else the newest); the same idempotency key
        asks for the same run."""
        async with self._engine.begin() as connection:
            current = await _summary(connection, tenant_id, workflow_id)
            refuse_if_archived(current.status, "run")
            version = version or current.active_version or current.latest_version
            definition = await _definition(
                connection, workflow_id, version, pointer="/body/version", status=422
            )
            refuse_mismatched_input(definition, data)
            run_id = manual_run_id(workflow_id, idempotency_key) if idempotency_key else uuid4()
            command = StartRun(
                tenant_id=tenant_id,
                correlation_id=run_id,
                run_id=run_id,
                workflow_id=workflow_id,
                workflow_version=version,
                trigger=TriggerData(kind="manual", data=data, started_by=started_by),
                idempotency_key=f"manual:{idempotency_key or run_id}",
            )
            await self._outbox.add(connection, Outgoing(RUNS_COMMANDS, str(run_id), command))
        self._outbox.wake()
        return ManualRun(run_id, version)

    async def webhook_token(self, tenant_id: str, workflow_id: UUID) -> str:
        """The unguessable token of the workflow's webhook address."""
        async with self._engine.connect() as connection:
            await _summary(connection, tenant_id, workflow_id)
            return await workflows.webhook_token(connection, workflow_id)

    async def _new_draft(
        self,
        connection: AsyncConnection,
        tenant_id: str,
        name: str,
        definition: WorkflowDefinition,
        description: str,
        by: UUID | None,
    ) -> Row:
        workflow_id = uuid4()
        token = secrets.token_urlsafe(24)
        await workflows.insert_draft(
            connection,
            workflow_id,
            tenant_id,
            name,
            token,
            utc_now(),
            description=description,
            created_by=by,
        )
        await workflows.add_version(connection, tenant_id, workflow_id, 1, definition, utc_now())
        return await _summary(connection, tenant_id, workflow_id)

    async def _deactivate(self, tenant_id: str, workflow_id: UUID, status: Status) -> Row:
        try:
            return await self._set_inactive(tenant_id, workflow_id, status)
        finally:
            self._changed()

    async def _set_inactive(self, tenant_id: str, workflow_id: UUID, status: Status) -> Row:
        async with self._engine.begin() as connection:
            await _locked(connection, tenant_id, workflow_id)
            await trigger_index.replace(connection, workflow_id, None)
            await workflows.set_status(connection, workflow_id, status, active_version=None, now=utc_now())
            return await _summary(connection, tenant_id, workflow_id)


async def _check_links(
    connection: AsyncConnection,
    tenant_id: str,
    definition: WorkflowDefinition,
    *,
    own_id: UUID | None,
    own_next_version: int,
) -> None:
    links = workflow_links(definition)
    if links:
        found = await workflows.linked(connection, tenant_id, (link.workflow_id for link in links))
        refuse_broken_links(links, found, own_id=own_id, own_next_version=own_next_version)


async def _summary(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Row:
    row = await workflows.summary(connection, tenant_id, workflow_id)
    if row is None:
        raise NotFound("workflow")
    return row


async def _locked(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Row:
    row = await workflows.locked(connection, tenant_id, workflow_id)
    if row is None:
        raise NotFound("workflow")
    return row


async def _definition(
    connection: AsyncConnection, workflow_id: UUID, version: int, *, pointer: str, status: int
) -> WorkflowDefinition:
    definition = await workflows.definition(connection, workflow_id, version)
    if definition is None:
        raise UnknownVersion(version, pointer=pointer, status=status)
    return definition


async def _refuse_ungranted_topics(
    connection: AsyncConnection, tenant_id: str, definition: WorkflowDefinition
) -> None:
    """A Kafka trigger or publish node on a topic the tenant was not granted is refused on saving."""
    if uses_topics(definition):
        refuse_ungranted_topics(definition, await topic_grants.granted(connection, tenant_id))
