"""The cluster tier: tests on the secured three-node Kafka of deploy/local's cluster-test profile,
which `make test` starts for this tier (deploy/local/run-tests.sh) and stops after it."""

from __future__ import annotations

import os

import pytest

from tests.support.infra import Infra


@pytest.fixture(scope="session")
def cluster_infra(infra: Infra) -> Infra:
    """The session's Kafka and PostgreSQL, when the Kafka is a secured cluster."""
    if (
        len(infra.kafka_bootstrap.split(",")) < 3
        or os.environ.get("MILLRACE_KAFKA_SECURITY_PROTOCOL") != "SASL_SSL"
    ):
        pytest.fail(
            f"the cluster tests need the secured three-node cluster; MILLRACE_KAFKA_BOOTSTRAP is "
            f"{infra.kafka_bootstrap!r}: run them with `make test` (its cluster tier starts it), or start "
            "`python3 deploy/local/infra.py start --profile cluster-test` and export what it prints",
            pytrace=False,
        )
    return infra
