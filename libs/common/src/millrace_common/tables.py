"""Table definitions for queries (SQLAlchemy Core). The schema itself is made by the migrations.

Ownership follows the services: a service writes only its own tables; other services may read
immutable rows (workflow versions) but never write them.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# gateway
tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("created_by", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)
credentials = Table(
    "credentials",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
tenant_ai_settings = Table(
    "tenant_ai_settings",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("base_url", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("api_key_ciphertext", LargeBinary),
    Column("temperature", Float, nullable=False),
    Column("max_tokens", Integer, nullable=False),
    Column("monthly_token_budget", BigInteger),
    Column("allow_private_endpoint", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
pipelines = Table(
    "pipelines",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
workflows = Table(
    "workflows",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("active_version", Integer),
    Column("webhook_token", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
records = Table(
    "records",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("pipeline_id", String(128), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# trigger (written by the gateway when a version is activated, read by the trigger service)
active_triggers = Table(
    "active_triggers",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("trigger_kind", String(32), nullable=False),
    Column("pipeline_id", String(128), nullable=False),
    Column("workflow_version", Integer, nullable=False),
)

# orchestrator
run_events = Table(
    "run_events",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
runs = Table(
    "runs",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("workflow_id", Uuid, nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", JSONB, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("last_seq", Integer, nullable=False),
)
node_executions = Table(
    "node_executions",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("node_id", String(64), primary_key=True),
    Column("node_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("input", JSONB),
    Column("output", JSONB),
    Column("error", JSONB),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Float),
)
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("producer", String(32), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("message_id", Uuid, primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)
