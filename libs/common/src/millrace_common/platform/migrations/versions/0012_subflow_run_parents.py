"""A run started by a ``sub_workflow`` node names its parent run and node on the ``runs`` projection,
so ``GET /runs?parent_run_id=`` and a run's children are an index probe.

Revision ID: 0012_subflow_run_parents
"""

from alembic import op

revision = "0012_subflow_run_parents"
down_revision = "0011_run_final_output"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table runs add column parent_run_id uuid, add column parent_node_id varchar(200);
        create index runs_parent on runs (tenant_id, parent_run_id, started_at)
            where parent_run_id is not null;
        """
    )


def downgrade() -> None:
    op.execute(
        "drop index runs_parent; alter table runs drop column parent_node_id, drop column parent_run_id"
    )
