"""Which webhook calls are taken, and what of them can be stored. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from millrace_common.language.workflow import TriggerConfig
from pydantic import JsonValue


@dataclass(frozen=True)
class WebhookTarget:
    """An active workflow with a webhook trigger: where a call to its address goes."""

    workflow_id: UUID
    tenant_id: str
    workflow_version: int
    config: TriggerConfig


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
