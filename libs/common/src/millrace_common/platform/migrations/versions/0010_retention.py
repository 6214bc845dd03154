"""Data lifecycle: each tenant's retention of finished runs (written by the gateway, read by the
orchestrator), and the indexes the retention passes find old rows by, so that a pass reads a batch
of the oldest rows instead of scanning a table that holds millions.

Revision ID: 0010_retention
"""

from alembic import op

revision = "0010_retention"
down_revision = "0009_one_hourly_limit"
branch_labels = None
depends_on = ("0003_runner", "0006_approval")  # indexes on their tables


def upgrade() -> None:
    op.execute(
        """
        create table tenant_retention (
            tenant_id varchar(64) primary key,
            run_retention_days integer check (run_retention_days between 1 and 3650),
            export_before_prune boolean not null,
            updated_at timestamptz not null
        );
        create index runs_finished on runs (finished_at) where finished_at is not null;
        create index processed_messages_by_age on processed_messages (processed_at);
        create index runner_executions_by_age on runner_executions (recorded_at);
        create index ai_answers_by_age on ai_answers (created_at);
        create index ai_token_usage_by_age on ai_token_usage (recorded_at);
        create index tasks_done on tasks (done_at) where done_at is not null;
        create index approvals_closed on approvals (closed_at) where closed_at is not null;
        create index approval_notifications_by_approval on approval_notifications (approval_id);
        """
    )


def downgrade() -> None:
    op.execute(
        "drop index approval_notifications_by_approval; drop index approvals_closed;"
        " drop index tasks_done; drop index ai_token_usage_by_age; drop index ai_answers_by_age;"
        " drop index runner_executions_by_age; drop index processed_messages_by_age;"
        " drop index runs_finished; drop table tenant_retention;"
    )
