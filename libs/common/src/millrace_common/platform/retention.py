"""How long every table keeps its rows: each table of the schema is listed here, either pruned by the
service that writes it after a documented time, or declared as not growing (and why).

``docs/operations.md`` ("Retention of every table") shows the same list; ``tests/unit/
test_docs_retention.py`` fails when a migration creates a table this list does not name, or when the
document and this list disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RUN_RETENTION_DAYS = 30
"""How long a finished run is kept when neither its tenant nor ``MILLRACE_RUN_RETENTION_DAYS`` says."""


@dataclass(frozen=True)
class Pruned:
    """Rows deleted by ``owner``'s clock once older than ``kept`` (the default), tuned by ``setting``."""

    owner: str
    kept: str
    setting: str


@dataclass(frozen=True)
class NotGrowing:
    """A table whose size does not grow with the traffic, or that its writer empties itself."""

    why: str


@dataclass(frozen=True)
class Kept:
    """Rows a tenant made and deletes itself (configuration, its data): no clock prunes them."""

    why: str


def described(retention: Pruned | NotGrowing | Kept) -> str:
    """The table's retention in the words of the operations guide (not for ``Pruned``)."""
    return f"{'not growing' if isinstance(retention, NotGrowing) else 'kept'}: {retention.why}"


_RUN = Pruned(
    "orchestrator", "30 days after the run finished", "tenant setting; `MILLRACE_RUN_RETENTION_DAYS`"
)
_RUNNER = Pruned("node-runner", "30 days", "`MILLRACE_RUNNER_RETENTION_DAYS`")
_APPROVAL = Pruned("approval", "365 days after the approval closed", "`MILLRACE_APPROVAL_RETENTION_DAYS`")
_NOTIFICATIONS = Pruned(
    "node-runner", "30 days after delivery or giving up", "`MILLRACE_NOTIFICATION_RETENTION_DAYS`"
)
_TRIGGER = Pruned("trigger", "7 days", "`MILLRACE_TRIGGER_RETENTION_DAYS`")
_CONFIGURATION = Kept("configuration, until the tenant deletes it")
_PER_TENANT = NotGrowing("one row per tenant")

RETENTION: Mapping[str, Pruned | NotGrowing | Kept] = {
    # the run log and its projections, pruned together per run
    "run_events": _RUN,
    "runs": _RUN,
    "node_executions": _RUN,
    "run_reruns": _RUN,
    "processed_messages": Pruned("orchestrator", "8 days", "`MILLRACE_PROCESSED_MESSAGES_RETENTION_HOURS`"),
    "workflow_starts": Pruned("orchestrator", "2 hours", "fixed (a workflow's hourly limit looks back one)"),
    "timers": NotGrowing("a timer is deleted when it fires or its run ends"),
    "run_event_waits": NotGrowing("a row is deleted when its node stops waiting or its run ends"),
    "outbox": NotGrowing("a row is deleted once Kafka has acknowledged it"),
    "runner_executions": _RUNNER,
    "ai_answers": _RUNNER,
    "ai_token_usage": Pruned("node-runner", "400 days", "`MILLRACE_AI_USAGE_RETENTION_DAYS`"),
    "ai_token_months": Kept("one row per tenant and month: the AI budget's totals"),
    "tasks": Pruned("node-runner", "90 days after the task was done", "`MILLRACE_TASK_RETENTION_DAYS`"),
    "approvals": _APPROVAL,
    "approval_decisions": _APPROVAL,
    "approval_audit": _APPROVAL,
    "approval_notifications": _APPROVAL,
    "approval_deadlines": NotGrowing("a deadline is deleted when its approval closes or escalates"),
    "trigger_firings": _TRIGGER,
    "webhook_deliveries": _TRIGGER,
    "dead_letters": Pruned(
        "gateway",
        "replayed or discarded ones, `MILLRACE_DEAD_LETTER_RETENTION_MS` (30 days) after that; pending ones"
        " until someone acts on them",
        "`MILLRACE_DEAD_LETTER_RETENTION_MS`",
    ),
    "record_states": NotGrowing("one row per record seen: grows only with `records`"),
    "schedule_cursors": NotGrowing("one row per schedule of a scheduled workflow, at most 20 each"),
    "consumer_positions": NotGrowing("one row per consumed partition"),
    "active_triggers": NotGrowing("one row per active workflow and pipeline"),
    "workflow_triggers": NotGrowing("one row per active workflow"),
    "trigger_index_versions": _PER_TENANT,
    "records": Kept("the tenants' data, until deleted through the API"),
    "workflows": _CONFIGURATION,
    "workflow_versions": Kept("configuration, with its workflow (a run pins its version)"),
    "workflow_node_pins": Kept("configuration, with its workflow, until the editor unpins it"),
    "pipelines": _CONFIGURATION,
    "tenants": _PER_TENANT,
    "users": _CONFIGURATION,
    "api_keys": _CONFIGURATION,
    "credentials": _CONFIGURATION,
    "tenant_ai_settings": _PER_TENANT,
    "tenant_network_policies": _PER_TENANT,
    "tenant_retention": _PER_TENANT,
    "tenant_notification_settings": _PER_TENANT,
    "notifications": _NOTIFICATIONS,
    "notification_attempts": _NOTIFICATIONS,
    "producer_grants": Kept("configuration, until an operator revokes it (`millrace-admin grants revoke`)"),
    "topic_grants": Kept(
        "configuration, until an operator revokes it (`millrace-admin grants revoke-topic`)"
    ),
}
