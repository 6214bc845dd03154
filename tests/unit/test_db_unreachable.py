"""A caller that needs a connection while PostgreSQL cannot be reached hears so at once (a 503 from the
API), instead of waiting the pool's whole wait while psycopg_pool retries in the background."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from millrace_common.platform.db import connection_pool, take
from millrace_common.platform.outages import unreachable_dependency
from millrace_common.platform.settings import ServiceSettings
from psycopg_pool import PoolTimeout

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_millrace_environment")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


async def test_taking_a_connection_fails_fast_when_postgresql_refuses_connections():
    url = f"postgresql+psycopg://millrace@127.0.0.1:{closed_port()}/millrace?connect_timeout=2"
    pool = connection_pool(ServiceSettings(database_url=url), size=2, name="probe")
    try:
        began = time.monotonic()
        with pytest.raises(PoolTimeout) as refused:
            await take(pool, wait_seconds=30)
        took = time.monotonic() - began
    finally:
        await asyncio.wait_for(pool.close(), 10)
    assert took < 5, f"waited {took:.1f} s for a database that refuses connections"
    assert "cannot be reached" in str(refused.value)
    assert unreachable_dependency(refused.value) == "PostgreSQL"
