"""Schemathesis against the served OpenAPI schema: generated requests, valid and not, never get a 5xx.

Bounded in examples per operation so it stays within a few minutes; signed in as a tenant admin so
every operation is reachable. Driven through Hypothesis directly (schemathesis' pytest loader does not
yet run under this pytest)."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.support.api import provision_tenant, token_for
from tests.support.processes import System

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 12


def test_no_generated_request_gets_a_server_error(running_system: System) -> None:
    account = provision_tenant(running_system.infra, running_system.namespace, f"fuzz{uuid.uuid4().hex[:6]}")
    base_url = running_system.url("gateway")
    headers = {"Authorization": f"Bearer {token_for(base_url, account)}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

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
            case.call_and_validate(base_url=base_url, headers=headers, checks=[not_a_server_error])

        try:
            exercise()
        except Exception as failure:  # collected so one run reports every failing operation
            failures.append(f"{operation.label}: {str(failure)[:800]}")
    assert not failures, "\n\n".join(failures)
