"""Workflows written straight into the database, as the gateway writes them, for tests and benches
that drive the orchestrator without the gateway."""

from __future__ import annotations

import secrets
import uuid
from uuid import UUID

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.tables import workflow_versions, workflows
from sqlalchemy import Engine, insert


def insert_workflow(
    engine: Engine, tenant_id: str, definition: dict, *, name: str = "workflow"
) -> tuple[UUID, int]:
    """An active workflow with one version, written as the gateway writes it (validated first)."""
    checked = WorkflowDefinition.model_validate(definition)
    workflow_id, now = uuid.uuid4(), utc_now()
    with engine.begin() as connection:
        connection.execute(
            insert(workflows).values(
                id=workflow_id,
                tenant_id=tenant_id,
                name=name,
                status="active",
                latest_version=1,
                active_version=1,
                webhook_token=secrets.token_urlsafe(24),
                created_at=now,
                updated_at=now,
            )
        )
        connection.execute(
            insert(workflow_versions).values(
                workflow_id=workflow_id,
                version=1,
                tenant_id=tenant_id,
                definition=checked.model_dump(mode="json", by_alias=True),
                created_at=now,
            )
        )
    return workflow_id, 1
