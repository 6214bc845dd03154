"""Fixtures shared by integration and end-to-end tests: real Kafka and PostgreSQL, and a namespace
(topics, consumer groups, database schema) of their own so tests never see each other's data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.infra import Infra, InfraMissing, create_namespace, drop_namespace, locate_infra
from tests.support.network import LoopbackServer, loopback_server
from tests.support.observed_statuses import (
    Recorder,
    declared_statuses,
    service_documents,
    undeclared,
    write_report,
)
from tests.support.processes import ARTIFACTS, System

OBSERVED = Recorder()
OBSERVED.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every status a service answered in this run must be declared for its operation in the
    service's OpenAPI document (tests/support/observed_statuses.py); a drift fails the run."""
    if not OBSERVED.seen:
        return
    missing = undeclared(OBSERVED.seen, declared_statuses(service_documents()))
    write_report(ARTIFACTS / "observed-statuses.json", OBSERVED.seen, missing)
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"  {m.method} {m.template} answered {m.status} (e.g. {m.example})" for m in missing]
        text = "statuses the tests saw that the OpenAPI documents do not declare:\n" + "\n".join(lines)
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def no_millrace_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that read settings: the ``MILLRACE_*`` variables of the shell (a secured cluster's,
    say) must not change what they see."""
    for name in [n for n in os.environ if n.upper().startswith("MILLRACE_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    try:
        with locate_infra() as found:
            yield found
    except InfraMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def _namespace(infra: Infra) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    create_namespace(infra, name)
    yield name
    drop_namespace(infra, name)


@pytest.fixture
def namespace(infra: Infra) -> Iterator[str]:
    yield from _namespace(infra)


@pytest.fixture(scope="module")
def module_namespace(infra: Infra) -> Iterator[str]:
    """One namespace for a module whose tests share running services (each test uses its own ids)."""
    yield from _namespace(infra)


@pytest.fixture
def system(infra: Infra, namespace: str) -> Iterator[System]:
    """Services started by the test itself (``system.start(...)``), stopped afterwards."""
    running = System(infra, namespace)
    yield running
    running.stop_all()


@pytest.fixture(scope="module")
def running_system(infra: Infra, module_namespace: str) -> Iterator[System]:
    """Every service, started once for the module."""
    running = System(infra, module_namespace)
    running.start()
    yield running
    running.stop_all()


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server for nodes to call (tenants must be granted loopback first)."""
    with loopback_server() as running:
        yield running
