"""Fixtures shared by integration and end-to-end tests: real Kafka and PostgreSQL, one namespace
(topics, consumer groups, database schema) per test so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.infra import Infra, InfraMissing, create_namespace, drop_namespace, locate_infra
from tests.support.processes import System


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    try:
        with locate_infra() as found:
            yield found
    except InfraMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture
async def namespace(infra: Infra) -> AsyncIterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    await create_namespace(infra, name)
    yield name
    await drop_namespace(infra, name)


@pytest.fixture
def system(infra: Infra, namespace: str) -> Iterator[System]:
    running = System(infra, namespace)
    yield running
    running.stop_all()
