"""Tenants, users and signed-in API clients for tests."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from millrace_common.platform.db import create_engine
from millrace_gateway.adapters.security import Passwords
from millrace_gateway.service_layer.accounts import create_tenant

from tests.support.infra import Infra
from tests.support.processes import System


@dataclass(frozen=True)
class Account:
    tenant_id: str
    email: str
    password: str


def provision_tenant(infra: Infra, namespace: str, tenant_id: str) -> Account:
    """A tenant with its first admin, written straight to the database as ``millrace-admin`` does."""
    account = Account(tenant_id, f"admin@{tenant_id}.test", secrets.token_urlsafe(16))

    async def run() -> None:
        engine = create_engine(infra.settings(namespace))
        try:
            await create_tenant(engine, Passwords(), tenant_id, tenant_id, account.email, account.password)
        finally:
            await engine.dispose()

    # Safe from async tests too: the coroutine runs on a loop of its own, in a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(asyncio.run, run()).result()
    return account


def token_for(base_url: str, account: Account) -> str:
    answer = httpx.post(
        f"{base_url}/api/v1/auth/token",
        json={"tenant_id": account.tenant_id, "email": account.email, "password": account.password},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def client(base_url: str, bearer: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=15)


def signed_in(base_url: str, account: Account) -> httpx.Client:
    return client(base_url, token_for(base_url, account))


def loopback_tenant(system: System, prefix: str) -> httpx.Client:
    """A signed-in client of a new tenant whose nodes may call loopback servers."""
    from tests.support.network import grant_loopback

    tenant_id = f"{prefix}{uuid.uuid4().hex[:8]}"
    account = provision_tenant(system.infra, system.namespace, tenant_id)
    grant_loopback(system.infra, system.namespace, tenant_id)
    return signed_in(system.url("gateway"), account)
