"""A run's final output: the output of its top-level end node that finished last, kept on the ``runs``
projection when the run completes (``RunCompleted.final_output``), so ``GET /runs/{id}`` reads it
without folding the run's log.

Revision ID: 0011_run_final_output
"""

from alembic import op

revision = "0011_run_final_output"
down_revision = "0010_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table runs add column final_output jsonb")


def downgrade() -> None:
    op.execute("alter table runs drop column final_output")
