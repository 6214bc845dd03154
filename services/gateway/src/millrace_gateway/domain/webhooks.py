"""Which webhook calls are taken, what of them can be stored, and what each accepted call starts. Pure.

The gateway decides an accepted call's outcome itself, with the trigger's conditions, and writes the
run's ``StartRun`` to its outbox in the transaction that claims the delivery id: a webhook needs no
hop through the trigger service (the call's workflow is already known, and checked, here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.contracts.messages.webhooks import run_id_for_key, webhook_idempotency_key
from millrace_common.language.conditions import ConditionError, evaluate
from millrace_common.language.workflow import TriggerConfig
from pydantic import JsonValue


@dataclass(frozen=True)
class WebhookTarget:
    """An active workflow with a webhook trigger: where a call to its address goes."""

    workflow_id: UUID
    tenant_id: str
    workflow_version: int
    config: TriggerConfig
    respond_wait_seconds: float = 0.0
    """How long a call waits for the run's respond_to_webhook node (0: answered 202 at once)."""


@dataclass(frozen=True)
class WebhookCall:
    delivery_id: str
    content_type: str
    """``json`` or ``form``."""
    body: JsonValue
    headers: dict[str, str]
    query: dict[str, JsonValue]
    signature_verified: bool


def takes_calls(status: str, trigger_kind: str | None) -> bool:
    return status == "active" and trigger_kind == "webhook"


def verifying_secret(config: TriggerConfig, *, signed: bool) -> str | None:
    """The credential a call's signature is checked with: its trigger's secret, when the trigger
    requires a signature or the call is signed; None when the call is not checked."""
    if config.secret_credential is None or not (config.require_signature or signed):
        return None
    return config.secret_credential


def unstorable(value: JsonValue) -> str | None:
    """PostgreSQL stores neither NUL characters nor unpaired surrogates, and the run's log is there."""
    stack = [value]
    while stack:
        item = stack.pop()
        texts: list[str] = []
        if isinstance(item, str):
            texts = [item]
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            texts = list(item)
            stack.extend(item.values())
        for text in texts:
            if "\x00" in text:
                return "the body holds a NUL character, which cannot be stored"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return "the body holds an unpaired surrogate, which cannot be stored"
    return None


class CallOutcome(StrEnum):
    STARTED = "started"
    FILTERED = "filtered"
    """The trigger's conditions do not hold for the call: no run."""
    CONDITION_ERROR = "condition_error"
    """The trigger's conditions cannot be evaluated for the call: no run, and the reason kept."""


@dataclass(frozen=True)
class CallDecision:
    """What an accepted call does: the run it names (started or not) and, when it starts one, the
    command that starts it."""

    delivery_id: str
    run_id: UUID
    outcome: CallOutcome
    reason: str | None
    start: StartRun | None


def trigger_data(call: WebhookCall, received_at: datetime) -> JsonObject:
    """What the run sees under ``trigger`` (besides ``trigger.kind``)."""
    return {
        "webhook": {
            "delivery_id": call.delivery_id,
            "content_type": call.content_type,
            "body": call.body,
            "headers": dict(call.headers),
            "query": dict(call.query),
            "signature_verified": call.signature_verified,
            "received_at": received_at.isoformat(),
        },
    }


def call_run_id(target: WebhookTarget, delivery_id: str) -> UUID:
    """The run a call with this delivery id names (the same id names the same run)."""
    return run_id_for_key(webhook_idempotency_key(target.workflow_id, delivery_id))


def decide_call(target: WebhookTarget, call: WebhookCall, *, now: datetime) -> CallDecision:
    """The run an accepted call names, and whether the trigger's conditions let it start."""
    key = webhook_idempotency_key(target.workflow_id, call.delivery_id)
    run_id = run_id_for_key(key)
    data = trigger_data(call, now)
    outcome, reason = _conditions_verdict(target, data, now)
    if outcome is not CallOutcome.STARTED:
        return CallDecision(call.delivery_id, run_id, outcome, reason, None)
    start = StartRun(
        tenant_id=target.tenant_id,
        correlation_id=run_id,
        run_id=run_id,
        workflow_id=target.workflow_id,
        workflow_version=target.workflow_version,
        trigger=TriggerData(kind="webhook", data=data),
        idempotency_key=key,
    )
    return CallDecision(call.delivery_id, run_id, outcome, None, start)


def _conditions_verdict(
    target: WebhookTarget, data: JsonObject, now: datetime
) -> tuple[CallOutcome, str | None]:
    conditions = target.config.conditions
    if conditions is None:
        return CallOutcome.STARTED, None
    context: dict[str, JsonValue] = {
        "trigger": {"kind": "webhook", **data},
        "workflow": {"id": str(target.workflow_id), "version": target.workflow_version},
        "vars": {},
        "nodes": {},
    }
    try:
        holds = evaluate(conditions, context, now=now)
    except ConditionError as error:
        return CallOutcome.CONDITION_ERROR, f"the trigger's conditions cannot be evaluated: {error}"
    if holds:
        return CallOutcome.STARTED, None
    return CallOutcome.FILTERED, "the trigger's conditions do not hold for this call"
