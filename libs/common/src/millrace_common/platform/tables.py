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
    text,
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
producer_grants = Table(
    "producer_grants",
    metadata,
    Column("principal", String(160), primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# gateway (migration 0012_bulk_run_reruns): which run a re-run was started from, written with the
# re-run's StartRun (the orchestrator's ``runs`` projection does not know the link).
run_reruns = Table(
    "run_reruns",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("rerun_of", Uuid, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
)


topic_grants = Table(
    "topic_grants",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("access", String(16), primary_key=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("dlq_partition", Integer, nullable=False),
    Column("dlq_offset", BigInteger, nullable=False),
    Column("tenant_id", String(64)),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("consumer_group", Text, nullable=False),
    Column("cause", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("error_type", Text),
    Column("trace", Text),
    Column("attempts", Integer, nullable=False),
    Column("key", Text),
    Column("headers", JSONB, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("value_truncated", Boolean, nullable=False),
    Column("dead_lettered_at", DateTime(timezone=True), nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("replay_requested_at", DateTime(timezone=True)),
    Column("replayed_at", DateTime(timezone=True)),
    Column("replayed_by", Text),
    Column("discarded_at", DateTime(timezone=True)),
    Column("discarded_by", Text),
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
    # {"<model>": {"prompt_per_million": n, "completion_per_million": n}}, in price_currency
    Column("model_prices", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("price_currency", String(3), nullable=False, server_default="USD"),
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
    Column("description", Text, nullable=False, server_default=""),
    Column("created_by", Uuid),
    Column("updated_by", Uuid),
)
workflow_node_pins = Table(
    "workflow_node_pins",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("node_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("output", JSONB, nullable=False),
    Column("pinned_by", Uuid),
    Column("pinned_at", DateTime(timezone=True), nullable=False),
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

# gateway (migration 0010_retention): each tenant's retention of finished runs, read by the orchestrator.
# A null run_retention_days means the installation's default (MILLRACE_RUN_RETENTION_DAYS).
tenant_retention = Table(
    "tenant_retention",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("run_retention_days", Integer),
    Column("export_before_prune", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# trigger (written by the gateway when a version is activated, read by the trigger service)
active_triggers = Table(
    "active_triggers",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("trigger_kind", String(32), nullable=False),
    Column("pipeline_id", String(128), primary_key=True),
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
    Column("final_output", JSONB),
    Column("parent_run_id", Uuid),
    Column("parent_node_id", String(200)),
)
workflow_starts = Table(
    "workflow_starts",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("workflow_id", Uuid, primary_key=True),
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("started", Integer, nullable=False),
)
node_executions = Table(
    "node_executions",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("node_id", String(200), primary_key=True),
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

# orchestrator: durable timers
timers = Table(
    "timers",
    metadata,
    Column("timer_id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("node_id", String(200)),
    Column("attempt", Integer),
    Column("fire_at", DateTime(timezone=True), nullable=False),
)
# The runs that wait for a record event (migration 0012_waits_record_event_waits): the orchestrator
# writes them with the run's events, the trigger service reads them for each record event.
run_event_waits = Table(
    "run_event_waits",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("node_id", String(300), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("pipeline_id", String(128), nullable=False),
    Column("record_id", String(1000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# node-runner (migration 0003_runner) ------------------------------------------------------------
from sqlalchemy import Date

# tenant_network_policies is the tenant's to set (tests and, later, the gateway write it); the runner
# only reads it. The others are written by the runner; the gateway reads and closes tasks.
tenant_network_policies = Table(
    "tenant_network_policies",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("allow_private_targets", Boolean, nullable=False),
    Column("allowed_networks", ARRAY(Text), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
runner_executions = Table(
    "runner_executions",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("node_id", String(200), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("node_type", String(32), nullable=False),
    Column("output", JSONB),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
# workflow_id (migration 0013_agent_steps) is null on rows written before it; node_id is the node
# instance (an agent's turns count for the agent's node, not for each turn).
ai_token_usage = Table(
    "ai_token_usage",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("run_id", Uuid, nullable=False),
    Column("workflow_id", Uuid),
    Column("node_id", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("model", Text, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
ai_token_months = Table(
    "ai_token_months",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("month", Date, primary_key=True),
    Column("total_tokens", BigInteger, nullable=False),
)
ai_answers = Table(
    "ai_answers",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("input_hash", String(64), primary_key=True),
    Column("output", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("assignee_user", String(320)),
    Column("assignee_role", String(100)),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("run_id", Uuid),
    Column("node_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Column("done_by", Text),
)

# trigger (migration 0004_trigger) ---------------------------------------------------------------
# The gateway writes workflow_triggers (with active_triggers) when a version is activated and deletes
# both when it is paused or archived; it also writes webhook_deliveries. A database trigger moves
# trigger_index_versions with every change of active_triggers. The trigger service writes the rest
# and reads all of them.
workflow_triggers = Table(
    "workflow_triggers",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("trigger_kind", String(32), nullable=False),
    Column("config", JSONB, nullable=False),
    # max_executions_per_hour is still in the database, optional since 0009 and no longer read or
    # written (the orchestrator judges the limit); a later release drops it.
    Column("activated_at", DateTime(timezone=True), nullable=False),
)
trigger_firings = Table(
    "trigger_firings",
    metadata,
    Column("idempotency_key", String(300), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("workflow_id", Uuid, nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("trigger_kind", String(32), nullable=False),
    Column("source_event_id", Uuid),
    Column("run_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)
record_states = Table(
    "record_states",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("pipeline_id", String(128), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    Column("data", JSONB, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)
schedule_cursors = Table(
    "schedule_cursors",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("schedule_name", String(64), primary_key=True),
    Column("activated_at", DateTime(timezone=True), nullable=False),
    Column("cursor_at", DateTime(timezone=True), nullable=False),
    Column("next_slot_at", DateTime(timezone=True)),
    Column("last_slot_at", DateTime(timezone=True)),
    Column("run_count", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("delivery_id", String(200), primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(32), nullable=False, server_default="started"),
    Column("reason", Text),
)
trigger_index_versions = Table(
    "trigger_index_versions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
consumer_positions = Table(
    "consumer_positions",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
