"""Runs started per workflow and minute: the orchestrator judges ``max_executions_per_hour`` by
summing at most 61 rows, where counting the ``runs`` of the last hour grew with the workflow's rate.
A partial index keeps the count of a workflow's running runs to those runs.

Revision ID: 0007_workflow_starts
"""

from alembic import op

revision = "0007_workflow_starts"
down_revision = "0005_timers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table workflow_starts (
            tenant_id varchar(64) not null,
            workflow_id uuid not null,
            minute timestamptz not null,
            started integer not null,
            primary key (tenant_id, workflow_id, minute)
        );
        insert into workflow_starts (tenant_id, workflow_id, minute, started)
        select tenant_id, workflow_id, date_trunc('minute', started_at), count(*)
        from runs
        where started_at > now() - interval '2 hours' and status <> 'throttled'
        group by 1, 2, 3;
        create index runs_running_by_workflow on runs (tenant_id, workflow_id) where status = 'running';
        """
    )


def downgrade() -> None:
    op.execute("drop index runs_running_by_workflow; drop table workflow_starts;")
