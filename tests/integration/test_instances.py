"""Two instances of a service on one database, against the real PostgreSQL: what comes due fires once
(the orchestrator's durable timers, the approval service's deadlines: each taken with ``skip locked``
and deleted in the transaction that acts on it), and a change one instance makes is seen by the
others within the bound docs/architecture.md gives (the trigger index at once, a tenant's network
policy within ``MILLRACE_NETWORK_POLICY_CACHE_SECONDS``). Trigger schedules have their own two-instance
test (test_triggers_schedules.py), the outbox relays theirs (test_outbox_instances.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import timedelta
from uuid import UUID

import pytest
from millrace_approval.adapters.store import take_due_deadlines
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import Namespace
from millrace_common.language.workflow import TriggerConfig
from millrace_common.platform.db import create_engine
from millrace_common.platform.human_tables import approval_deadlines, approvals
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import outbox, tenants, timers
from millrace_gateway.adapters import trigger_index
from millrace_gateway.adapters.network_policies import allow_networks
from millrace_gateway.domain.trigger_index import ActiveTrigger
from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_orchestrator.entrypoints.clock import TimerLoop
from millrace_trigger.adapters.store import TriggerStore
from sqlalchemy import func, insert, select

from tests.support.infra import Infra

pytestmark = pytest.mark.integration


def service_settings(infra: Infra, namespace: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="instances",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )


def test_two_orchestrators_fire_each_due_timer_once(infra: Infra, namespace: str):
    settings = service_settings(infra, namespace)
    due = utc_now() - timedelta(seconds=1)
    timer_ids = [uuid.uuid4() for _ in range(300)]

    async def scenario() -> tuple[Counter[str], int, list[int]]:
        engines = [create_engine(settings) for _ in range(2)]
        directs = [DirectConnections(settings, size=1) for _ in range(2)]
        try:
            async with engines[0].begin() as connection:
                await connection.execute(
                    insert(timers),
                    [
                        {
                            "timer_id": t,
                            "run_id": uuid.uuid4(),
                            "tenant_id": "acme",
                            "purpose": "wait",
                            "fire_at": due,
                        }
                        for t in timer_ids
                    ],
                )
            loops = [
                TimerLoop(
                    engine,
                    direct,
                    Namespace(namespace),
                    LiveRelay(settings, direct, "orchestrator"),  # not running: rows stay in the outbox
                    utc_now,
                    batch_size=40,
                )
                for engine, direct in zip(engines, directs, strict=True)
            ]

            async def drain(loop: TimerLoop) -> int:
                fired = 0
                while sent := await loop.fire_due():
                    fired += sent
                return fired

            fired = list(await asyncio.gather(*(drain(loop) for loop in loops)))
            async with engines[0].connect() as connection:
                values = (await connection.execute(select(outbox.c.value))).scalars().all()
                left = (await connection.execute(select(func.count()).select_from(timers))).scalar_one()
            return Counter(json.loads(bytes(v))["timer_id"] for v in values), left, fired
        finally:
            for engine in engines:
                await engine.dispose()
            for direct in directs:
                await direct.close()

    commands, left, fired = asyncio.run(scenario())
    assert left == 0
    assert set(commands) == {str(t) for t in timer_ids}, "a due timer never fired"
    assert max(commands.values()) == 1, f"timers fired twice: {[t for t, n in commands.items() if n > 1]}"
    assert sum(fired) == len(timer_ids), fired


def test_two_approval_services_take_each_due_deadline_once(infra: Infra, namespace: str):
    settings = service_settings(infra, namespace)
    approval_ids = [uuid.uuid4() for _ in range(150)]

    async def scenario() -> tuple[list[set[UUID]], int]:
        engines = [create_engine(settings) for _ in range(2)]
        try:
            async with engines[0].begin() as connection:
                now = utc_now()
                await connection.execute(
                    insert(approvals),
                    [
                        {
                            "id": a,
                            "tenant_id": "acme",
                            "run_id": uuid.uuid4(),
                            "node_id": "approve",
                            "assignee_role": "admin",
                            "workflow_id": uuid.uuid4(),
                            "title": "t",
                            "description": "",
                            "data": {},
                            "data_hash": "0" * 64,
                            "quorum": 1,
                            "allow_self_approval": False,
                            "on_deadline": "escalate",
                            "status": "pending",
                            "requested_at": now,
                        }
                        for a in approval_ids
                    ],
                )
                await connection.execute(
                    insert(approval_deadlines),
                    [
                        {"approval_id": a, "tenant_id": "acme", "fire_at": utc_now() - timedelta(minutes=1)}
                        for a in approval_ids
                    ],
                )

            async def escalate(index: int) -> set[UUID]:
                async with engines[index].begin() as connection:
                    await asyncio.sleep(0.1 * index)  # the second starts while the first holds its rows
                    taken = await take_due_deadlines(connection, utc_now(), limit=100)
                    await asyncio.sleep(0.5)  # escalating them, the rows locked
                return {row.approval_id for row in taken}

            taken = list(await asyncio.gather(escalate(0), escalate(1)))
            async with engines[0].connect() as connection:
                left = (
                    await connection.execute(select(func.count()).select_from(approval_deadlines))
                ).scalar_one()
            return taken, left
        finally:
            for engine in engines:
                await engine.dispose()

    (first, second), left = asyncio.run(scenario())
    assert not first & second, f"{len(first & second)} deadlines escalated by both instances"
    assert first | second == set(approval_ids)
    assert left == 0


def test_an_activation_through_one_gateway_is_seen_by_each_trigger_instance_at_once(
    infra: Infra, namespace: str
):
    settings = service_settings(infra, namespace)
    key = ("acme", "record_created", "orders")
    workflow_id = uuid.uuid4()
    active = ActiveTrigger(
        workflow_id=workflow_id,
        tenant_id="acme",
        workflow_version=1,
        trigger_kind="record_created",
        config=TriggerConfig(name="On order", kind="record_created", pipeline_ids=("orders",)).model_dump(
            mode="json", by_alias=True
        ),
        activated_at=utc_now(),
        pipelines=("orders",),
    )

    async def scenario() -> list[list[int]]:
        gateway = create_engine(settings)
        trigger_a, trigger_b = (DirectConnections(settings, size=1) for _ in range(2))
        stores = [(trigger_a, TriggerStore("trigger")), (trigger_b, TriggerStore("trigger"))]

        async def seen() -> list[int]:
            versions = []
            for database, store in stores:
                async with database.transaction() as connection:
                    found = await store.record_candidates(connection, [key])
                versions.append(len(found.get(key, ())))
            return versions

        try:
            before = await seen()  # both instances have the tenant's (empty) index cached
            async with gateway.begin() as connection:
                await trigger_index.replace(connection, workflow_id, active)
            activated = await seen()
            async with gateway.begin() as connection:
                await trigger_index.replace(connection, workflow_id, None)  # paused
            paused = await seen()
            return [before, activated, paused]
        finally:
            await gateway.dispose()
            for database in (trigger_a, trigger_b):
                await database.close()

    before, activated, paused = asyncio.run(scenario())
    assert before == [0, 0]
    assert activated == [1, 1], "an instance kept its cached index after the activation"
    assert paused == [0, 0], "an instance kept firing a paused workflow"


def test_a_network_policy_changed_through_the_gateway_reaches_each_runner_within_its_cache_time(
    infra: Infra, namespace: str
):
    settings = service_settings(infra, namespace)
    ttl = 5.0
    clock = [1000.0]

    async def scenario() -> list[list[bool]]:
        gateway = create_engine(settings)
        runners = [create_engine(settings) for _ in range(2)]
        configs = [
            TenantConfig(engine, None, policy_cache_seconds=ttl, monotonic=lambda: clock[0])
            for engine in runners
        ]

        async def private_allowed() -> list[bool]:
            return [bool((await c.network_policy("acme")).allowed_networks) for c in configs]

        try:
            async with gateway.begin() as connection:
                await connection.execute(insert(tenants).values(id="acme", name="Acme", created_at=utc_now()))
            before = await private_allowed()  # cached by both runners
            async with gateway.begin() as connection:
                await allow_networks(connection, "acme", ["10.1.0.0/16"], utc_now())
            clock[0] += ttl - 0.5
            within = await private_allowed()
            clock[0] += 1.0
            after = await private_allowed()
            return [before, within, after]
        finally:
            for engine in (gateway, *runners):
                await engine.dispose()

    before, within, after = asyncio.run(scenario())
    assert before == [False, False]
    assert within == [False, False], "the policy is cached for its documented time"
    assert after == [True, True], "a runner still used the old policy past its cache time"
