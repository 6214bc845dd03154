"""Tasks that ``task_notify`` nodes create, listed and closed through the gateway's tasks router
(mounted here on an in-process gateway app, with real PostgreSQL)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.db import create_engine
from millrace_common.platform.secrets import new_key
from millrace_common.platform.tables import tasks
from millrace_gateway.adapters.security import Passwords
from millrace_gateway.bootstrap import build
from millrace_gateway.domain.permissions import Role
from millrace_gateway.entrypoints.http import tasks as tasks_api
from millrace_gateway.service_layer.accounts import add_user, create_tenant
from millrace_gateway.settings import GatewaySettings
from pydantic import SecretStr
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.infra import Infra

pytestmark = pytest.mark.integration


@dataclass
class Gateway:
    api: httpx.AsyncClient
    db: AsyncEngine
    passwords: Passwords

    async def sign_in(self, tenant: str, email: str, password: str) -> dict[str, str]:
        answer = await self.api.post(
            "/api/v1/auth/token", json={"tenant_id": tenant, "email": email, "password": password}
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def task(
        self, tenant: str, *, user: str | None = None, role: str | None = None, title: str = "t"
    ) -> str:
        task_id = uuid.uuid4()
        async with self.db.begin() as connection:
            await connection.execute(
                insert(tasks).values(
                    id=task_id,
                    tenant_id=tenant,
                    assignee_user=user,
                    assignee_role=role,
                    title=title,
                    message="",
                    run_id=uuid.uuid4(),
                    node_id="notify",
                    status="open",
                    created_at=utc_now(),
                )
            )
        return str(task_id)


@pytest.fixture
async def gateway(infra: Infra, namespace: str) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
        namespace=namespace,
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        encryption_key=SecretStr(new_key()),
    )
    app = build(settings)
    app.include_router(tasks_api.router)
    db = create_engine(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as api:
        yield Gateway(api, db, Passwords())
    await db.dispose()
    await app.state.engine.dispose()


async def test_callers_see_tasks_for_their_user_or_their_roles_and_close_them(gateway: Gateway):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await create_tenant(
        gateway.db, gateway.passwords, tenant, tenant, "admin@acme.test", "correct horse battery"
    )
    async with gateway.db.begin() as connection:
        approver_id = await add_user(
            connection, gateway.passwords, tenant, "Ada@Acme.test", "correct horse battery", {Role.APPROVER}
        )
    for_email = await gateway.task(tenant, user="ada@acme.test", title="by email")
    for_id = await gateway.task(tenant, user=str(approver_id), title="by id")
    for_role = await gateway.task(tenant, role="approver", title="by role")
    await gateway.task(tenant, role="admin", title="not hers")
    await gateway.task(tenant, user="someone@acme.test", title="not hers either")
    await gateway.task(f"t-{uuid.uuid4().hex[:8]}", role="approver", title="another tenant")
    ada = await gateway.sign_in(tenant, "ada@acme.test", "correct horse battery")

    listed = await gateway.api.get("/api/v1/tasks", headers=ada)
    closed = await gateway.api.post(f"/api/v1/tasks/{for_role}/done", headers=ada)
    again = await gateway.api.post(f"/api/v1/tasks/{for_role}/done", headers=ada)
    still_open = await gateway.api.get("/api/v1/tasks", headers=ada)
    done = await gateway.api.get("/api/v1/tasks", params={"status": "done"}, headers=ada)
    admin = await gateway.sign_in(tenant, "admin@acme.test", "correct horse battery")
    not_admins = await gateway.api.post(f"/api/v1/tasks/{for_email}/done", headers=admin)
    anonymous = await gateway.api.get("/api/v1/tasks")

    assert listed.status_code == 200
    assert {t["id"] for t in listed.json()["items"]} == {for_email, for_id, for_role}
    assert (
        closed.status_code == 200
        and closed.json()["status"] == "done"
        and closed.json()["done_by"] == str(approver_id)
    )
    assert again.json()["done_at"] == closed.json()["done_at"]
    assert {t["id"] for t in still_open.json()["items"]} == {for_email, for_id}
    assert [t["id"] for t in done.json()["items"]] == [for_role]
    assert not_admins.status_code == 404
    assert anonymous.status_code == 401
