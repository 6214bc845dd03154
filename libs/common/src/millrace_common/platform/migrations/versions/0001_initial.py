"""The walking skeleton's tables: workflows, records, trigger index, run log and projections, outbox.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table workflows (
            id uuid primary key,
            tenant_id varchar(64) not null,
            name text not null,
            status varchar(16) not null,
            latest_version integer not null,
            active_version integer,
            created_at timestamptz not null,
            updated_at timestamptz not null
        );
        create index workflows_by_tenant on workflows (tenant_id, created_at desc);
        create table workflow_versions (
            workflow_id uuid not null references workflows (id),
            version integer not null,
            tenant_id varchar(64) not null,
            definition jsonb not null,
            created_at timestamptz not null,
            primary key (workflow_id, version)
        );
        create table records (
            id uuid primary key,
            tenant_id varchar(64) not null,
            pipeline_id varchar(128) not null,
            data jsonb not null,
            created_at timestamptz not null,
            updated_at timestamptz not null
        );
        create index records_by_pipeline on records (tenant_id, pipeline_id);
        create table active_triggers (
            workflow_id uuid primary key,
            tenant_id varchar(64) not null,
            trigger_kind varchar(32) not null,
            pipeline_id varchar(128) not null,
            workflow_version integer not null
        );
        create index active_triggers_lookup on active_triggers (tenant_id, trigger_kind, pipeline_id);
        create table run_events (
            run_id uuid not null,
            seq integer not null,
            event_id uuid not null,
            type varchar(64) not null,
            payload jsonb not null,
            recorded_at timestamptz not null,
            primary key (run_id, seq)
        );
        create table runs (
            run_id uuid primary key,
            tenant_id varchar(64) not null,
            workflow_id uuid not null,
            workflow_version integer not null,
            status varchar(16) not null,
            trigger jsonb not null,
            error text,
            started_at timestamptz not null,
            finished_at timestamptz,
            last_seq integer not null
        );
        create index runs_by_workflow on runs (tenant_id, workflow_id, started_at desc);
        create table node_executions (
            run_id uuid not null,
            node_id varchar(64) not null,
            node_type varchar(32) not null,
            status varchar(16) not null,
            attempts integer not null,
            input jsonb,
            output jsonb,
            error jsonb,
            scheduled_at timestamptz,
            finished_at timestamptz,
            duration_ms double precision,
            primary key (run_id, node_id)
        );
        create table outbox (
            id bigserial primary key,
            producer varchar(32) not null,
            topic varchar(255) not null,
            key bytea,
            value bytea not null,
            created_at timestamptz not null
        );
        create index outbox_by_producer on outbox (producer, id);
        create table processed_messages (
            consumer varchar(64) not null,
            message_id uuid not null,
            processed_at timestamptz not null,
            primary key (consumer, message_id)
        );
        """
    )
