"""The runner reads a tenant's network policy once for the nodes that need it together: the others wait
for that read. When the node doing the read is cancelled (its node timed out while PostgreSQL was
slow), the waiting nodes read it themselves instead of failing with the reader's cancellation."""

from __future__ import annotations

import asyncio

import pytest
from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_node_runner.domain.addresses import TargetPolicy

pytestmark = pytest.mark.unit


class ScriptedReads(TenantConfig):
    """The first read hangs until cancelled; every later one answers the policy."""

    def __init__(self) -> None:
        super().__init__(engine=None, box=None, policy_cache_seconds=60)  # type: ignore[arg-type]
        self.reads = 0
        self.first_started = asyncio.Event()

    async def _load_policy(self, tenant_id: str) -> TargetPolicy:
        self.reads += 1
        if self.reads == 1:
            self.first_started.set()
            await asyncio.Event().wait()
        return TargetPolicy(allow_private=True)


async def test_waiting_nodes_read_the_policy_themselves_when_the_reader_is_cancelled():
    config = ScriptedReads()
    reader = asyncio.create_task(config.network_policy("acme"))
    await config.first_started.wait()
    waiters = [asyncio.create_task(config.network_policy("acme")) for _ in range(3)]
    await asyncio.sleep(0)
    reader.cancel()
    policies = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert all(policy.allow_private for policy in policies)
    assert config.reads == 2  # one waiter read for the others
    with pytest.raises(asyncio.CancelledError):
        await reader


async def test_a_failed_read_is_the_waiting_nodes_failure_too():
    class Failing(TenantConfig):
        def __init__(self) -> None:
            super().__init__(engine=None, box=None, policy_cache_seconds=60)  # type: ignore[arg-type]
            self.gate = asyncio.Event()

        async def _load_policy(self, tenant_id: str) -> TargetPolicy:
            await self.gate.wait()
            raise ConnectionError("PostgreSQL went away")

    config = Failing()
    calls = [asyncio.create_task(config.network_policy("acme")) for _ in range(3)]
    await asyncio.sleep(0)
    config.gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(o) for o in outcomes] == [ConnectionError] * 3
