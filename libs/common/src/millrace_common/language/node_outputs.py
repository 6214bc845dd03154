"""What a run's data looks like to templates and conditions: the top-level fields of each node type's
output (``nodes.<id>.output``), and the paths under ``trigger`` each trigger kind provides.

The producers (the orchestrator for the trigger and the nodes it evaluates itself, the node runner for
the rest, the trigger service and the gateway for the trigger payloads) build these shapes; this module
states them once, ``docs/node-reference.md`` shows them in tables, and tests hold the three together
(a unit test the docs and the producers' pure code, an end-to-end test real runs).

A name in angle brackets stands for names the workflow chooses: ``<variable>`` is each variable a
``set`` node sets, ``<output key>`` each key of an ``end`` node's ``output``, ``<input key>`` each key
of a manual run's input, ``<child output key>`` each key of a
sub-workflow's final output (with ``wait``; ``run_id`` is the child's with ``fire_and_forget``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CHILD_OUTPUT_KEY",
    "END_OUTPUT_KEY",
    "MANUAL_INPUT_KEY",
    "NODE_OUTPUT_FIELDS",
    "RECORD_KINDS",
    "SET_VARIABLE",
    "TRIGGER_PAYLOAD_PATHS",
]

SET_VARIABLE = "<variable>"
END_OUTPUT_KEY = "<output key>"
MANUAL_INPUT_KEY = "<input key>"
CHILD_OUTPUT_KEY = "<child output key>"

_AI_META = ("model", "finish_reason", "usage", "cached")
_HTTP_RESPONSE = ("status", "headers", "body", "truncated", "url")

NODE_OUTPUT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "trigger": ("kind", "data"),
    "ai_prompt": ("text", *_AI_META),
    "ai_analysis": ("data", *_AI_META),
    "ai_classification": ("label", "confidence", "reasoning", *_AI_META),
    "ai_agent": ("answer", "data", "turns", "tool_calls", "usage", "model", "transcript"),
    "record_create": ("record",),
    "record_update": ("record",),
    "record_find": ("records", "count"),
    "record_delete": ("deleted", "record"),
    "condition": ("result",),
    "switch": ("case",),
    "for_each": ("results", "failed", "count"),
    "wait_delay": ("waited_until",),
    "set": (SET_VARIABLE,),
    "end": (END_OUTPUT_KEY,),
    "http_request": _HTTP_RESPONSE,
    "webhook_out": _HTTP_RESPONSE,
    "kafka_publish": ("topic", "partition", "offset"),
    "approval": ("decision", "decided_by", "note"),
    "task_notify": ("task_id", "assignee", "status"),
    "sub_workflow": (CHILD_OUTPUT_KEY, "run_id"),
    "wait_for_event": ("source", "name", "payload", "received_at"),
    "respond_to_webhook": ("status", "headers", "body"),
    "code": ("result", "printed"),
}
"""The fields of each node type's output when it succeeds (``fallback`` outputs are the workflow's own)."""

_RECORD = (
    "trigger.kind",
    "trigger.record.id",
    "trigger.record.pipeline_id",
    "trigger.record.data",
    "trigger.record.old_data",
    "trigger.event_type",
    "trigger.event_id",
    "trigger.occurred_at",
    "trigger.causation_depth",
)
RECORD_KINDS = ("record_created", "record_updated", "record_deleted", "field_changed")

TRIGGER_PAYLOAD_PATHS: Mapping[str, tuple[str, ...]] = {
    "record_created": _RECORD,
    "record_updated": (*_RECORD, "trigger.changed_fields"),
    "record_deleted": _RECORD,
    "field_changed": (*_RECORD, "trigger.changed_fields", "trigger.changes"),
    "webhook": (
        "trigger.kind",
        "trigger.webhook.delivery_id",
        "trigger.webhook.content_type",
        "trigger.webhook.body",
        "trigger.webhook.headers",
        "trigger.webhook.query",
        "trigger.webhook.signature_verified",
        "trigger.webhook.received_at",
    ),
    "scheduled": (
        "trigger.kind",
        "trigger.schedule.slot",
        "trigger.schedule.slot_local",
        "trigger.schedule.name",
        "trigger.schedule.cron",
        "trigger.schedule.every",
        "trigger.schedule.unit",
        "trigger.schedule.timezone",
        "trigger.schedule.late",
        "trigger.schedule.missed_slots",
    ),
    "manual": ("trigger.kind", f"trigger.{MANUAL_INPUT_KEY}"),
    "kafka": (
        "trigger.kind",
        "trigger.kafka.topic",
        "trigger.kafka.partition",
        "trigger.kafka.offset",
        "trigger.kafka.key",
        "trigger.kafka.headers",
        "trigger.kafka.timestamp",
        "trigger.kafka.value",
    ),
}
"""Every path under ``trigger`` a run of each trigger kind has (``record_updated`` has
``changed_fields`` when the record's earlier state is known; a schedule's slot has ``cron``, ``every``
and ``unit``, null where they do not apply)."""
