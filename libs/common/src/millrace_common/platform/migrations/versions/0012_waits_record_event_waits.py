"""Runs waiting for a record event: one row per ``wait_for_event`` node instance that waits (or will
wait, when it keeps earlier events) for a record event of a pipeline and record. The orchestrator
writes them with the run's events; the trigger service looks up the rows of each record event it
reads and sends each waiting run the event.

Revision ID: 0012_waits_record_event_waits
"""

from alembic import op

revision = "0012_waits_record_event_waits"
down_revision = "0011_named_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table run_event_waits (
            run_id uuid not null,
            node_id varchar(300) not null,
            tenant_id varchar(64) not null,
            pipeline_id varchar(128) not null,
            record_id varchar(1000) not null,
            created_at timestamptz not null,
            primary key (run_id, node_id)
        );
        create index run_event_waits_by_record on run_event_waits (tenant_id, pipeline_id, record_id);
        """
    )


def downgrade() -> None:
    op.execute("drop table run_event_waits")
