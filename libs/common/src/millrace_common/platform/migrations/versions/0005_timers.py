"""Durable timers of the orchestrator (retry back-off, delays, node and run timeouts).

Revision ID: 0005_timers
"""

from alembic import op

revision = "0005_timers"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table timers (
            timer_id uuid primary key,
            run_id uuid not null,
            tenant_id varchar(64) not null,
            purpose varchar(32) not null,
            node_id varchar(64),
            attempt integer,
            fire_at timestamptz not null
        );
        create index timers_due on timers (fire_at);
        create index timers_by_run on timers (run_id);
        """
    )
