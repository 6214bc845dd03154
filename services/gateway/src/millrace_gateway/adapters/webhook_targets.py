"""The workflow behind a webhook address, read on a plain psycopg connection (through SQLAlchemy's
async engine the lookup cost more CPU than the rest of the call together: its greenlet bridge,
statement compilation and result wrapping, and a pooled connection's rollback).

What a read found is kept for ``fresh_seconds`` (``MILLRACE_WEBHOOK_TARGET_FRESH_SECONDS``): at a
steady rate the read was an eighth of the gateway's CPU per call, and a statement per call for
PostgreSQL, for an answer that changes only when someone activates, pauses or archives the workflow.
Those changes go through ``Workflows``, which calls ``forget`` once its transaction ended, so
this gateway answers from the new state at once; another gateway (several serve one installation)
does within ``fresh_seconds``. A read that began before a ``forget`` is not kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from millrace_common.language.workflow import TriggerConfig, WorkflowSettings
from millrace_common.platform.pg import DirectConnections, execute

_BY_TOKEN = (
    "select w.id, w.tenant_id, w.status, t.workflow_version, t.trigger_kind, cast(t.config as text)"
    " from workflows w left join workflow_triggers t on t.workflow_id = w.id where w.webhook_token = :token"
)


@dataclass(frozen=True)
class TargetRow:
    workflow_id: UUID
    tenant_id: str
    status: str
    workflow_version: int | None
    trigger_kind: str | None
    config: TriggerConfig | None


@lru_cache(maxsize=4096)
def _config(text: str) -> TriggerConfig:
    """A trigger's config, parsed once per distinct text (configs are immutable per version)."""
    return TriggerConfig.model_validate_json(text)


_DEFINITION = (
    "select cast(definition as text) from workflow_versions where workflow_id = :workflow_id"
    " and version = :version"
)


def respond_wait_of(definition: dict[str, Any]) -> float:
    """How long a call to a workflow version waits for its answer: its ``webhook_response_wait_seconds``
    setting when it has a ``respond_to_webhook`` node, else 0 (the call is answered 202 at once)."""
    nodes = definition.get("nodes") or []
    if not any(isinstance(n, dict) and n.get("type") == "respond_to_webhook" for n in nodes):
        return 0.0
    settings = definition.get("settings") or {}
    return float(WorkflowSettings.model_validate(settings).webhook_response_wait_seconds)


KNOWN_TARGETS_MAX = 4096
"""Addresses (and versions' answer waits) kept at most; past that the memory is emptied (unknown
addresses count too, so calls to made-up addresses cannot grow it)."""


class WebhookTargets:
    def __init__(
        self,
        connections: DirectConnections,
        *,
        fresh_seconds: float = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connections = connections
        self._fresh_seconds = fresh_seconds
        self._clock = clock
        self._known: dict[str, tuple[float, TargetRow | None]] = {}
        self._generation = 0
        """Counts ``forget`` calls: a read that saw another generation began before one."""
        # A version never changes, so what it answers never does: read once per version.
        self._respond_waits: dict[tuple[UUID, int], float] = {}

    async def respond_wait(self, workflow_id: UUID, version: int) -> float:
        """Seconds a call to this workflow version waits for its run's answer (0: it does not wait)."""
        known = self._respond_waits.get((workflow_id, version))
        if known is not None:
            return known
        async with self._connections.connection() as connection:
            cursor = await execute(connection, _DEFINITION, {"workflow_id": workflow_id, "version": version})
            row: tuple[Any, ...] | None = await cursor.fetchone()
        wait = respond_wait_of(json.loads(row[0])) if row is not None else 0.0
        if len(self._respond_waits) >= KNOWN_TARGETS_MAX:
            self._respond_waits.clear()
        self._respond_waits[(workflow_id, version)] = wait
        return wait

    def forget(self) -> None:
        """Read every address afresh: a workflow's state, trigger or active version changed."""
        self._known.clear()
        self._generation += 1

    async def by_token(self, token: str) -> TargetRow | None:
        """The workflow behind ``token``, with its active trigger's version, kind and config (None
        when no workflow has this address), as read within the last ``fresh_seconds``."""
        now = self._clock()
        known = self._known.get(token)
        if known is not None and known[0] > now:
            return known[1]
        generation = self._generation
        row = await self._read(token)
        if self._fresh_seconds > 0 and generation == self._generation:
            if len(self._known) >= KNOWN_TARGETS_MAX:
                self._known.clear()
            self._known[token] = (now + self._fresh_seconds, row)
        return row

    async def _read(self, token: str) -> TargetRow | None:
        async with self._connections.connection() as connection:
            cursor = await execute(connection, _BY_TOKEN, {"token": token}, prepare=True)
            row: tuple[Any, ...] | None = await cursor.fetchone()
        if row is None:
            return None
        workflow_id, tenant_id, status, version, kind, config = row
        return TargetRow(
            UUID(str(workflow_id)), tenant_id, status, version, kind, _config(config) if config else None
        )
