"""Re-runs: a run started again from another run's trigger data (``POST /api/v1/runs/{id}/rerun``)
names the run it re-ran, so the run view links them both ways. The gateway writes the row with the
re-run's StartRun; no foreign key to ``runs``, which the orchestrator writes later (and prunes).

Revision ID: 0012_bulk_run_reruns
"""

from alembic import op

revision = "0012_bulk_run_reruns"
down_revision = "0011_named_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table run_reruns (
            run_id uuid primary key,
            tenant_id varchar(64) not null references tenants (id) on delete cascade,
            rerun_of uuid not null,
            requested_by text not null,
            requested_at timestamptz not null
        );
        create index run_reruns_by_original on run_reruns (tenant_id, rerun_of);
        """
    )


def downgrade() -> None:
    op.execute("drop table run_reruns")
