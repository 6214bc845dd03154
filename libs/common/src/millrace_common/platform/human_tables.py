"""The tables of the people in the loop: approvals (written only by the approval service) and the
notifications that reach assignees (settings written by the gateway, deliveries by the node runner).
The rest of the schema is in ``tables``; both share its ``metadata``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from millrace_common.platform.tables import metadata

# approval (migration 0006_approval) -------------------------------------------------------------
# Written only by the approval service.
approvals = Table(
    "approvals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("node_id", String(200), nullable=False),
    Column("workflow_id", Uuid, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("assignee_user", Text),
    Column("assignee_role", String(100)),
    Column("quorum", Integer, nullable=False),
    Column("allow_self_approval", Boolean, nullable=False),
    Column("requested_by", Text),
    Column("on_deadline", String(16), nullable=False),
    Column("escalate_to", JSONB),
    Column("due_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("escalated_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
)
approval_decisions = Table(
    "approval_decisions",
    metadata,
    Column("approval_id", Uuid, primary_key=True),
    Column("decided_by", Text, primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
approval_audit = Table(
    "approval_audit",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("approval_id", Uuid, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("actor", Text),
    Column("action", String(32), nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
approval_deadlines = Table(
    "approval_deadlines",
    metadata,
    Column("approval_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("fire_at", DateTime(timezone=True), nullable=False),
)
approval_notifications = Table(
    "approval_notifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("approval_id", Uuid, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("assignee_user", Text),
    Column("assignee_role", String(100)),
    Column("reason", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True)),
)

# notifications (migration 0012_notify_delivery) -------------------------------------------------
# The gateway writes tenant_notification_settings (the settings API); the node runner delivers:
# it writes notifications and notification_attempts, from tasks and approval_notifications, which it
# reads. The gateway reads notifications for the API and puts a given-up one back to pending (retry).
tenant_notification_settings = Table(
    "tenant_notification_settings",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("email_enabled", Boolean, nullable=False),
    Column("smtp_host", Text),
    Column("smtp_port", Integer),
    Column("smtp_tls", String(16), nullable=False),
    Column("smtp_from", Text),
    Column("smtp_credential", String(100)),
    Column("chat_enabled", Boolean, nullable=False),
    Column("chat_webhook_ciphertext", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_id", Text, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("link", Text),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
)
notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("notification_id", Uuid, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
)
