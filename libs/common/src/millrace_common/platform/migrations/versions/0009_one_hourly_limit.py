"""The hourly limit has one judge, the orchestrator (``workflow_starts``): the trigger index no longer
needs each workflow's ``max_executions_per_hour``. The column stops being required now and goes in a
later release, so that services of the release before (which still read and write it) and of this
one (which leave it out) run side by side while a release rolls out, in either order.

Revision ID: 0009_one_hourly_limit
"""

from alembic import op

revision = "0009_one_hourly_limit"
down_revision = "0008_ensure"
branch_labels = None
depends_on = ("0004_trigger",)  # the table it alters comes from that branch


def upgrade() -> None:
    op.execute(
        "alter table workflow_triggers alter column max_executions_per_hour drop not null,"
        " alter column max_executions_per_hour set default 100"
    )


def downgrade() -> None:
    op.execute(
        "update workflow_triggers set max_executions_per_hour = 100 where max_executions_per_hour is null;"
        " alter table workflow_triggers alter column max_executions_per_hour set not null"
    )
