"""The workflow behind a webhook address, read on a plain psycopg connection: every call reads it, and
through SQLAlchemy's async engine the lookup cost more CPU than the rest of the call together (its
greenlet bridge, statement compilation and result wrapping, and a pooled connection's rollback)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from millrace_common.language.workflow import TriggerConfig
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


class WebhookTargets:
    def __init__(self, connections: DirectConnections) -> None:
        self._connections = connections

    async def by_token(self, token: str) -> TargetRow | None:
        """The workflow behind ``token``, with its active trigger's version, kind and config (None
        unless the workflow is active with a trigger other than manual)."""
        async with self._connections.connection() as connection:
            cursor = await execute(connection, _BY_TOKEN, {"token": token}, prepare=True)
            row: tuple[Any, ...] | None = await cursor.fetchone()
        if row is None:
            return None
        workflow_id, tenant_id, status, version, kind, config = row
        return TargetRow(
            UUID(str(workflow_id)), tenant_id, status, version, kind, _config(config) if config else None
        )
