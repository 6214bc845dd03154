"""Every ``MILLRACE_*`` environment variable Millrace reads, and the start-up refusal of those it does
not. All services (and the command-line tools) share one environment, so a variable is unknown only
when no service and no tool reads it: a misspelt ``MILLRACE_KAFKA_BOOTSRAP`` would otherwise be
ignored silently (pydantic-settings ignores what matches no field, whatever ``extra`` says, because
it reads only the names it knows) and the service would run on the default.

The services may not import each other, so their own settings are listed here by name;
``tests/unit/test_environment_registry.py`` holds the list against every settings class and against
every ``MILLRACE_*`` name in the code, deployment files and docs."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from pydantic import ValidationError

from millrace_common.platform.settings import ServiceSettings

PREFIX = "MILLRACE_"

SERVICE_VARIABLES: frozenset[str] = frozenset(
    {
        # gateway (millrace_gateway.settings.GatewaySettings)
        "MILLRACE_BULK_RUNS_MAX",
        "MILLRACE_BULK_TOKEN_TTL_SECONDS",
        "MILLRACE_APPROVAL_API_URL",
        "MILLRACE_JWT_SECRET",
        "MILLRACE_JWT_TTL_SECONDS",
        "MILLRACE_KAFKA_GRANT_ACLS",
        "MILLRACE_KAFKA_TOOLS_CLASSPATH",
        "MILLRACE_LIVE_FEED_PAUSE_SECONDS",
        "MILLRACE_LIVE_HEARTBEAT_SECONDS",
        "MILLRACE_LIVE_INBOX_SIZE",
        "MILLRACE_LIVE_RUN_WAIT_SECONDS",
        "MILLRACE_OPERATOR_TENANT",
        "MILLRACE_PUBLIC_BASE_URL",
        "MILLRACE_WEBHOOK_RESPONSE_MAX_WAIT_SECONDS",
        "MILLRACE_WEBHOOK_TARGET_FRESH_SECONDS",
        # gateway and node-runner (millrace_common.platform.settings.CodeSandboxSettings)
        "MILLRACE_CODE_CONCURRENCY",
        "MILLRACE_CODE_CPU_SECONDS",
        "MILLRACE_CODE_MEMORY_BYTES",
        "MILLRACE_CODE_OUTPUT_BYTES",
        "MILLRACE_CODE_RECURSION_DEPTH",
        # trigger
        "MILLRACE_TRIGGER_CLOCK_FILE",
        "MILLRACE_TRIGGER_INGRESS_DISCOVERY_SECONDS",
        "MILLRACE_TRIGGER_KAFKA_DISCOVERY_SECONDS",
        "MILLRACE_TRIGGER_KAFKA_MAX_MESSAGE_BYTES",
        "MILLRACE_TRIGGER_MAX_CAUSATION_DEPTH",
        "MILLRACE_TRIGGER_RECORD_GATHER_MS",
        "MILLRACE_TRIGGER_RETENTION_DAYS",
        "MILLRACE_TRIGGER_SCHEDULE_GRACE_SECONDS",
        "MILLRACE_TRIGGER_SCHEDULE_TICK_SECONDS",
        # orchestrator
        "MILLRACE_PROCESSED_MESSAGES_RETENTION_HOURS",
        "MILLRACE_RETENTION_BATCH_RUNS",
        "MILLRACE_RETENTION_EXPORT_DIR",
        "MILLRACE_RUN_RETENTION_DAYS",
        "MILLRACE_SUB_WORKFLOW_MAX_DEPTH",
        # node-runner
        "MILLRACE_AI_CONCURRENCY",
        "MILLRACE_AI_USAGE_RETENTION_DAYS",
        "MILLRACE_DRAIN_SECONDS",
        "MILLRACE_HTTP_CONCURRENCY",
        "MILLRACE_HTTP_MAX_IDLE_CONNECTIONS",
        "MILLRACE_HTTP_MAX_REDIRECTS",
        "MILLRACE_HTTP_RESPONSE_CAP_BYTES",
        "MILLRACE_KAFKA_SESSION_TIMEOUT_MS",
        "MILLRACE_MAX_CAUSATION_DEPTH",
        "MILLRACE_NETWORK_POLICY_CACHE_SECONDS",
        "MILLRACE_OTHER_CONCURRENCY",
        "MILLRACE_RECORD_CONCURRENCY",
        "MILLRACE_RECORD_FIND_MAX_SCAN",
        "MILLRACE_REVOKE_DRAIN_SECONDS",
        "MILLRACE_RUNNER_RETENTION_DAYS",
        "MILLRACE_TASK_RETENTION_DAYS",
        "MILLRACE_NOTIFICATION_RETENTION_DAYS",
        "MILLRACE_NOTIFICATION_POLL_SECONDS",
        "MILLRACE_NOTIFICATION_MAX_ATTEMPTS",
        "MILLRACE_NOTIFICATION_RETRY_BASE_SECONDS",
        "MILLRACE_NOTIFICATION_RETRY_MAX_SECONDS",
        "MILLRACE_NOTIFICATION_LOOKBACK_HOURS",
        "MILLRACE_APPROVAL_BASE_URL",
        # approval (and MILLRACE_JWT_SECRET, above)
        "MILLRACE_APPROVAL_RETENTION_DAYS",
        "MILLRACE_COOKIE_SECURE",
        "MILLRACE_DEADLINE_POLL_SECONDS",
        "MILLRACE_SESSION_TTL_SECONDS",
    }
)
"""The settings of each service beyond :class:`ServiceSettings`'s (which every service has)."""

OTHER_VARIABLES: Mapping[str, str] = {
    "MILLRACE_ADMIN_PASSWORD": "millrace-admin create-tenant: the first admin's password",
    "MILLRACE_PRODUCER_PASSWORD": "millrace-admin producers create: the new producer principal's password",
    "MILLRACE_PROMETHEUS_URL": "printed by deploy/local/infra.py with the endpoints; no service reads it",
}
"""Variables read outside the settings classes, and by whom."""


def known_variables() -> frozenset[str]:
    """Every ``MILLRACE_*`` name some service or tool of Millrace reads."""
    common = {PREFIX + name.upper() for name in ServiceSettings.model_fields}
    return frozenset(common | SERVICE_VARIABLES | set(OTHER_VARIABLES))


@dataclass(frozen=True)
class UnknownVariable:
    name: str
    nearest: str | None

    def __str__(self) -> str:
        hint = f"; did you mean {self.nearest}?" if self.nearest else ""
        return f"{self.name} is not a Millrace setting{hint}"


def unknown_variables(environ: Mapping[str, str], known: frozenset[str]) -> list[UnknownVariable]:
    """The ``MILLRACE_*`` names in ``environ`` that are not in ``known``, each with the known name
    nearest to it (pydantic-settings matches names case-insensitively, so the comparison does too)."""
    unknown = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in known:
            unknown.append(UnknownVariable(name, _nearest(upper, known)))
    return unknown


def _nearest(name: str, known: frozenset[str]) -> str | None:
    # Compared without the prefix they all share, which would make any two names look alike.
    suffixes = {k.removeprefix(PREFIX): k for k in known}
    nearest = difflib.get_close_matches(name.removeprefix(PREFIX), list(suffixes), n=1, cutoff=0.6)
    return suffixes[nearest[0]] if nearest else None


def refuse_to_start(program: str, reasons: list[str]) -> NoReturn:
    """Say why on stderr, one reason a line, and exit with status 2."""
    print(f"{program}: refusing to start:", *(f"  {reason}" for reason in reasons), sep="\n", file=sys.stderr)
    raise SystemExit(2)


Settings = TypeVar("Settings", bound=ServiceSettings)


def load_settings(settings_class: type[Settings], program: str) -> Settings:
    """The settings of a service or tool named ``program``, read from the environment; it exits with
    status 2 and says why, naming each variable, when a ``MILLRACE_*`` variable is unknown or a
    setting is invalid."""
    unknown = unknown_variables(os.environ, known_variables())
    if unknown:
        refuse_to_start(program, [str(u) for u in unknown])
    try:
        return settings_class()
    except ValidationError as error:
        refuse_to_start(
            program, [line for item in error.errors(include_url=False) for line in _described(item)]
        )


def _described(item: Mapping[str, object]) -> list[str]:
    """One line per problem of a validation error, each naming its variable: a field's error gets
    the field's variable, a whole-model check (the Kafka security one) names its variables itself."""
    location = item.get("loc") or ()
    field = str(location[0]) if isinstance(location, tuple) and location else ""
    message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
    name = f"{PREFIX}{field.upper()}"
    return [
        line if not field or line.startswith(name) else f"{name}: {line}" for line in message.splitlines()
    ]
