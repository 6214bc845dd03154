"""The operational endpoints of a service with no API of its own (trigger, orchestrator, node runner):
a plain Starlette app that answers ``/healthz`` and ``/metrics`` and turns every other path or method
into a problem, and whose process does not import FastAPI; and no service loads the code sandbox
before a code node runs. ``/readyz`` needs the real Kafka and
PostgreSQL: the integration tier's services answer it (tests/support/processes.py waits on it)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, cast

from millrace_common.platform.service import ServiceParts, operations_app
from millrace_common.platform.settings import ServiceSettings
from prometheus_client import CollectorRegistry, Counter
from starlette.testclient import TestClient


def client() -> TestClient:
    registry = CollectorRegistry()
    Counter("millrace_example_total", "an example", registry=registry).inc(3)
    settings = ServiceSettings(service_name="example")
    # Without ``with``, TestClient does not run the lifespan: no producer or engine is touched.
    parts = ServiceParts(
        settings=settings, producer=cast(Any, None), engine=cast(Any, None), registry=registry
    )
    return TestClient(operations_app(parts))


def test_liveness_and_metrics_answer() -> None:
    web = client()
    assert web.get("/healthz").json() == {"status": "ok", "service": "example"}
    metrics = web.get("/metrics")
    assert metrics.status_code == 200
    assert "millrace_example_total 3.0" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")


def test_another_path_or_method_is_a_problem() -> None:
    web = client()
    missing = web.get("/docs")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found" and missing.json()["instance"] == "/docs"
    wrong = web.post("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]


def loaded(package: str, modules: tuple[str, ...]) -> set[str]:
    """Which of ``modules`` importing ``package``'s entry point and bootstrap loads."""
    probe = (
        f"import sys, {package}.main, {package}.bootstrap as b;"
        f"print(' '.join(m for m in {modules!r} if m in sys.modules))"
    )
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(answer.stdout.split())


def test_the_services_without_an_api_do_not_import_fastapi() -> None:
    for package in ("millrace_trigger", "millrace_orchestrator", "millrace_node_runner"):
        assert loaded(package, ("fastapi",)) == set(), package


def test_the_code_sandbox_is_loaded_only_when_code_runs() -> None:
    # The gateway (testing a code node) and the node runner (the code node) carry monty (about 12 MB)
    # only once a code node runs: code_sandbox.CodeSandbox starts its pool on first use.
    for package in ("millrace_gateway", "millrace_node_runner"):
        assert loaded(package, ("pydantic_monty",)) == set(), package


def test_no_service_loads_a_kafka_framework_or_a_terminal_renderer_it_does_not_use() -> None:
    # Each costs every process megabytes of resident memory (docs/benchmarks.md): the producer is
    # aiokafka's own (no FastStream, which brought unittest.mock along), and the gateway's one HTTP
    # client is httpx2, like the node runner's (httpx imports rich and pygments for its command line).
    unused = ("faststream", "unittest", "rich", "pygments", "httpx")
    services = ("gateway", "trigger", "orchestrator", "node_runner", "approval")
    for package in (f"millrace_{name}" for name in services):
        assert loaded(package, unused) == set(), package
