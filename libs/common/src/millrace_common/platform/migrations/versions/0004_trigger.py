"""Triggers: what each active trigger is configured to do, the firings record (exactly-once key and
hourly rate counter in one), last-seen record states, schedule cursors, webhook delivery ids, the
trigger service's consumer positions, and a version per tenant's part of the trigger index (moved by a
database trigger) so the trigger service can cache it. The index gets one row per (workflow, pipeline).

Revision ID: 0004_trigger
"""

from alembic import op

revision = "0004_trigger"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table active_triggers drop constraint active_triggers_pkey;
        alter table active_triggers add primary key (workflow_id, pipeline_id);

        create table workflow_triggers (
            workflow_id uuid primary key,
            tenant_id varchar(64) not null,
            workflow_version integer not null,
            trigger_kind varchar(32) not null,
            config jsonb not null,
            max_executions_per_hour integer not null,
            activated_at timestamptz not null
        );
        create index workflow_triggers_by_kind on workflow_triggers (trigger_kind);

        create table trigger_firings (
            idempotency_key varchar(300) primary key,
            tenant_id varchar(64) not null,
            workflow_id uuid not null,
            workflow_version integer not null,
            trigger_kind varchar(32) not null,
            source_event_id uuid,
            run_id uuid not null,
            status varchar(16) not null,
            reason text,
            fired_at timestamptz not null
        );
        create index trigger_firings_rate on trigger_firings (workflow_id, fired_at) where status = 'started';
        create index trigger_firings_by_workflow on trigger_firings (tenant_id, workflow_id, fired_at desc);
        create index trigger_firings_by_age on trigger_firings (fired_at);

        create table record_states (
            tenant_id varchar(64) not null,
            pipeline_id varchar(128) not null,
            record_id varchar(128) not null,
            data jsonb not null,
            event_id uuid not null,
            seen_at timestamptz not null,
            primary key (tenant_id, pipeline_id, record_id)
        );

        create table schedule_cursors (
            workflow_id uuid primary key,
            activated_at timestamptz not null,
            cursor_at timestamptz not null,
            next_slot_at timestamptz,
            updated_at timestamptz not null
        );

        create table webhook_deliveries (
            workflow_id uuid not null,
            delivery_id varchar(200) not null,
            run_id uuid not null,
            received_at timestamptz not null,
            primary key (workflow_id, delivery_id)
        );
        create index webhook_deliveries_by_age on webhook_deliveries (received_at);

        -- The trigger service caches each tenant's index and reloads it when its version moves;
        -- the version moves in the transaction that changes the index.
        create table trigger_index_versions (
            tenant_id varchar(64) primary key,
            version bigint not null
        );
        create function bump_trigger_index_version() returns trigger
        language plpgsql set search_path from current as $$
        declare
            changed_tenant varchar(64);
        begin
            if tg_op = 'DELETE' then
                changed_tenant := old.tenant_id;
            else
                changed_tenant := new.tenant_id;
            end if;
            insert into trigger_index_versions as v (tenant_id, version) values (changed_tenant, 1)
            on conflict (tenant_id) do update set version = v.version + 1;
            return null;
        end
        $$;
        create trigger active_triggers_changed after insert or update or delete on active_triggers
            for each row execute function bump_trigger_index_version();

        -- Workflows already active keep triggering: their trigger configs, and index rows for the
        -- kinds the index did not hold before (field_changed, webhook, scheduled).
        insert into workflow_triggers
            (workflow_id, tenant_id, workflow_version, trigger_kind, config,"""
        """ max_executions_per_hour, activated_at)
        select w.id, w.tenant_id, w.active_version, node->'data'->>'kind', node->'data',
               coalesce((v.definition->'settings'->>'max_executions_per_hour')::integer, 100), now()
        from workflows w
        join workflow_versions v on v.workflow_id = w.id and v.version = w.active_version
        cross join lateral jsonb_array_elements(v.definition->'nodes') as node
        where w.status = 'active' and node->>'type' = 'trigger' and node->'data'->>'kind' <> 'manual';
        insert into active_triggers (workflow_id, tenant_id, trigger_kind, pipeline_id, workflow_version)
        select t.workflow_id, t.tenant_id, t.trigger_kind, coalesce(p.pipeline, '*'), t.workflow_version
        from workflow_triggers t
        left join lateral jsonb_array_elements_text(
            case when jsonb_typeof(t.config->'pipeline_ids') = 'array'"""
        """ and jsonb_array_length(t.config->'pipeline_ids') > 0
                 then t.config->'pipeline_ids' end
        ) as p (pipeline) on true
        on conflict do nothing;

        create table consumer_positions (
            consumer varchar(64) not null,
            topic varchar(255) not null,
            partition integer not null,
            next_offset bigint not null,
            primary key (consumer, topic, partition)
        );
        """
    )
