"""Node runner: network policies, idempotent side effects, AI token usage and answers, tasks.

Revision ID: 0003_runner
"""

from alembic import op

revision = "0003_runner"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table tenant_network_policies (
            tenant_id varchar(64) primary key references tenants (id),
            allow_private_targets boolean not null default false,
            allowed_networks text[] not null default '{}',
            updated_at timestamptz not null
        );
        create table runner_executions (
            run_id uuid not null,
            node_id varchar(64) not null,
            attempt integer not null,
            tenant_id varchar(64) not null,
            node_type varchar(32) not null,
            output jsonb,
            recorded_at timestamptz not null,
            primary key (run_id, node_id, attempt)
        );
        create table ai_token_usage (
            id bigserial primary key,
            tenant_id varchar(64) not null,
            run_id uuid not null,
            node_id varchar(64) not null,
            attempt integer not null,
            model text not null,
            prompt_tokens integer not null,
            completion_tokens integer not null,
            total_tokens integer not null,
            recorded_at timestamptz not null
        );
        create index ai_token_usage_by_tenant on ai_token_usage (tenant_id, recorded_at);
        create index ai_token_usage_by_run on ai_token_usage (run_id);
        create table ai_token_months (
            tenant_id varchar(64) not null,
            month date not null,
            total_tokens bigint not null,
            primary key (tenant_id, month)
        );
        create table ai_answers (
            run_id uuid not null,
            input_hash char(64) not null,
            output jsonb not null,
            created_at timestamptz not null,
            primary key (run_id, input_hash)
        );
        create table tasks (
            id uuid primary key,
            tenant_id varchar(64) not null,
            assignee_user varchar(320),
            assignee_role varchar(100),
            title text not null,
            message text not null,
            run_id uuid,
            node_id varchar(64),
            status varchar(16) not null,
            created_at timestamptz not null,
            done_at timestamptz,
            done_by text,
            check ((assignee_user is null) <> (assignee_role is null)),
            check (status in ('open', 'done'))
        );
        create index tasks_by_user on tasks (tenant_id, lower(assignee_user), created_at desc)
            where assignee_user is not null;
        create index tasks_by_role on tasks (tenant_id, assignee_role, created_at desc)
            where assignee_role is not null;
        """
    )
