"""A scheduled trigger has several named schedules: a cursor per schedule, with its last slot and its
count of runs (shown by the workflow API). The cursor of a trigger written with one top-level cron is
the schedule named ``default``.

Revision ID: 0011_named_schedules
"""

from alembic import op

revision = "0011_named_schedules"
down_revision = "0004_trigger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table schedule_cursors
            add column schedule_name varchar(64) not null default 'default',
            add column last_slot_at timestamptz,
            add column run_count bigint not null default 0;
        alter table schedule_cursors drop constraint schedule_cursors_pkey,
            add primary key (workflow_id, schedule_name);
        alter table schedule_cursors alter column schedule_name drop default;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        delete from schedule_cursors where schedule_name <> 'default';
        alter table schedule_cursors drop constraint schedule_cursors_pkey,
            add primary key (workflow_id);
        alter table schedule_cursors drop column schedule_name, drop column last_slot_at,
            drop column run_count;
        """
    )
