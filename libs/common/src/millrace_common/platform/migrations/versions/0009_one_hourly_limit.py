"""The hourly limit has one judge, the orchestrator (``workflow_starts``): the trigger index no longer
carries each workflow's ``max_executions_per_hour``.

Revision ID: 0009_one_hourly_limit
"""

from alembic import op

revision = "0009_one_hourly_limit"
down_revision = "0008_ensure"
branch_labels = None
depends_on = ("0004_trigger",)  # the table it alters comes from that branch


def upgrade() -> None:
    op.execute("alter table workflow_triggers drop column if exists max_executions_per_hour")


def downgrade() -> None:
    op.execute(
        "alter table workflow_triggers add column max_executions_per_hour integer not null default 100"
    )
