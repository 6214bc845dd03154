"""Schemathesis against the served OpenAPI schemas of the gateway and the approval service: generated
requests, valid and not, never get a 5xx, and every answer (status, content type, headers, body) is one
the operation's OpenAPI document declares, so every error is the problem JSON it promises.

Bounded in examples per operation so it stays within a few minutes; signed in as a tenant admin so
every operation is reachable. Driven through Hypothesis directly (schemathesis' pytest loader does not
yet run under this pytest)."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import provision_tenant, token_for
from tests.support.processes import System

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 12


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize(("service", "least_operations"), [("gateway", 30), ("approval", 5)])
def test_every_generated_request_gets_an_answer_its_schema_declares(
    running_system: System, service: str, least_operations: int
) -> None:
    account = provision_tenant(running_system.infra, running_system.namespace, f"fuzz{uuid.uuid4().hex[:6]}")
    gateway = running_system.url("gateway")
    base_url = running_system.url(service)
    headers = {"Authorization": f"Bearer {token_for(gateway, account)}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= least_operations

    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            exercise()
        except (
            Exception,
            BaseExceptionGroup,
        ) as failure:  # collected: one run reports every failing operation
            failures.append(f"{operation.label}: {str(failure)[:800]}")
    assert not failures, "\n\n".join(failures)
