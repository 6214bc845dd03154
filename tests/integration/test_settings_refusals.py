"""A service process started with a misspelt or unusable setting stops at once, before it touches Kafka
or PostgreSQL, with exit status 2 and a message naming the variable (and, for a misspelling, the
nearest valid name), instead of running on a default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.infra import Infra

pytestmark = pytest.mark.integration


def start(service: str, infra: Infra, namespace: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **infra.env(namespace), "MILLRACE_HTTP_PORT": "0", **extra}
    executable = Path(sys.executable).parent / f"millrace-{service}"
    return subprocess.run([str(executable)], env=env, capture_output=True, text=True, timeout=120)


def test_a_service_with_a_misspelt_setting_exits_naming_it_and_the_setting_meant(infra: Infra):
    stopped = start("trigger", infra, "settings_typo", MILLRACE_KAFKA_BOOTSRAP="kafka-1:9093")
    assert stopped.returncode == 2
    assert (
        "MILLRACE_KAFKA_BOOTSRAP is not a Millrace setting; did you mean MILLRACE_KAFKA_BOOTSTRAP?"
        in stopped.stderr
    )
    assert "service started" not in stopped.stderr + stopped.stdout


def test_a_setting_of_another_service_is_not_refused(infra: Infra, tmp_path: Path):
    """All services share one environment: the orchestrator's retention setting does not stop the
    trigger service (which then stops on the next, genuinely wrong, setting)."""
    stopped = start(
        "trigger",
        infra,
        "settings_shared",
        MILLRACE_RUN_RETENTION_DAYS="30",
        MILLRACE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        MILLRACE_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        MILLRACE_KAFKA_SASL_USERNAME="millrace",
        MILLRACE_KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "absent"),
    )
    assert stopped.returncode == 2
    assert "MILLRACE_RUN_RETENTION_DAYS" not in stopped.stderr
    assert f"MILLRACE_KAFKA_SASL_PASSWORD_FILE: cannot read {tmp_path / 'absent'}" in stopped.stderr


def test_sasl_without_a_mechanism_stops_the_gateway_naming_the_variable(infra: Infra):
    stopped = start(
        "gateway",
        infra,
        "settings_sasl",
        MILLRACE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        MILLRACE_KAFKA_SASL_USERNAME="millrace",
        MILLRACE_KAFKA_SASL_PASSWORD="secret",
    )
    assert stopped.returncode == 2
    assert "set MILLRACE_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)" in stopped.stderr
    assert "secret" not in stopped.stderr
